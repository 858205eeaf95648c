"""The agent as a process: bad options stop it with exit 2, the admin endpoints answer,
stdout carries only records (logs go to stderr), JSON output with Downward API metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from support.logagent_procs import Agent, Writer, seq_line, wait_all
from support.processes import http_get


def test_bad_option_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "logagent", "--path", "/x.log", "--state-dir", str(tmp_path),
         "--syslog-address", "nowhere"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--syslog-address / LOGAGENT_SYSLOG_ADDRESS" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_state_dir_not_writable_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "logagent", "--path", "/x.log", "--state-dir", str(blocker / "s")],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1 and "state dir" in proc.stderr and proc.stdout == ""


def test_admin_endpoints_and_stdout_holds_only_records(
    agents: Callable[..., Agent], logs_dir: Path
) -> None:
    log = logs_dir / "app.log"
    Writer(log, 100).run()
    agent = agents("--path", str(log), "--log-level", "debug").start()
    wait_all(agent.stdout, 100)
    base = f"http://127.0.0.1:{agent.port}"
    assert http_get(base + "/healthz")[0] == 200
    assert http_get(base + "/readyz")[0] == 200
    metrics = agent.metrics()
    for name in ("logagent_lines_read_total", "logagent_bytes_read_total",
                 "logagent_lines_sent_total", "logagent_bytes_sent_total",
                 "logagent_lag_bytes", "logagent_files_followed",
                 "logagent_dropped_lines_total", "process_resident_memory_bytes"):
        assert any(key.startswith(name) for key in metrics), name
    assert agent.metric('logagent_lag_bytes{file="' + str(log)) == 0
    assert agent.stdout() == b"".join(seq_line(i) for i in range(1, 101))
    assert "following" in agent.stderr()


def test_json_output_with_metadata_and_parser(
    agents: Callable[..., Agent], logs_dir: Path
) -> None:
    log = logs_dir / "app.log"
    log.write_bytes(b'{"level":"warn","seq":1}\nnot json\n')
    agent = agents(
        "--path", str(log), "--stdout-format", "json", "--parser", "json",
        env={"POD_NAME": "web-1", "POD_NAMESPACE": "shop", "CONTAINER_NAME": "app"},
    ).start()
    records: list[dict[str, object]] = []

    def two() -> bool:
        records[:] = [json.loads(line) for line in agent.stdout().splitlines()]
        return len(records) == 2

    from support.processes import wait_for

    wait_for(two, what="two JSON records")
    first, second = records
    assert first["message"] == '{"level":"warn","seq":1}'
    assert first["fields"] == {"level": "warn", "seq": 1}
    assert first["pod"] == "web-1" and first["namespace"] == "shop" and first["container"] == "app"
    assert first["file"] == str(log) and str(first["time"]).endswith("Z")
    assert second["message"] == "not json" and "fields" not in second
    assert agent.metric("logagent_parse_errors_total") == 1
