"""The adapter as a process: command line, env, errors at startup, SIGTERM with a scrape in
flight."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from support import metrics
from support.processes import RedisServer, Service, adapter, free_port, http_get


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_help_lists_flags_and_env_vars() -> None:
    result = run("--help")
    assert result.returncode == 0
    for text in (
        "--redis-addr",
        "REDIS_ADDR",
        "--web-listen-address",
        "REDIS_EXPORTER_WEB_LISTEN_ADDRESS",
        "--check-keys",
        "-redis.addr",
    ):
        assert text in result.stdout


def test_bad_values_stop_startup_with_one_line() -> None:
    result = run("--web-listen-address", "nowhere")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "adapter: invalid value 'nowhere' for --web-listen-address / "
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS"
        )
    )
    result = run(env={"PATH": "/usr/bin:/bin", "REDIS_ADDR": "http://x:1"})
    assert result.returncode == 2 and "unsupported scheme 'http'" in result.stderr
    result = run("--tls-client-cert-file", "/nonexistent.pem", "--tls-client-key-file", "/x")
    assert result.returncode == 2
    assert "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE: no such file: /x" in result.stderr
    result = run("--redis-password", "hunter2", "--check-keys", "dbX=foo")
    assert result.returncode == 2 and "hunter2" not in result.stderr


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("--web-listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_go_style_flags_are_accepted(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    port = free_port()
    service = Service(
        [
            sys.executable,
            "-m",
            "adapter",
            "-redis.addr",
            redis_server.url,
            "-web.listen-address",
            f"127.0.0.1:{port}",
            "-namespace",
            "cache",
        ],
        port,
        tmp_path / "go.log",
    )
    started.append(service.start(ready_path="/healthz"))
    families = metrics.parse(service.get()[1])
    assert metrics.value(families, "cache_up") == 1


def test_sigterm_lets_the_scrape_in_flight_finish(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    service = adapter(tmp_path, "--redis-addr", redis_server.url)
    started.append(service.start())
    redis_server.client().set("k", "v")
    service.get()
    results: list[tuple[int, str]] = []
    redis_server.client().execute_command("CLIENT", "PAUSE", "1000", "ALL")  # a slow scrape
    scraper = threading.Thread(target=lambda: results.append(http_get(service.base + "/metrics")))
    scraper.start()
    time.sleep(0.2)
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(10) == 0
    scraper.join(5)
    status, text = results[0]
    assert status == 200
    assert metrics.value(metrics.parse(text), "redis_up") == 1
    assert "shutting down" in service.log() and "stopped" in service.log()
