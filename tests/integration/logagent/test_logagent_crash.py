"""kill -9 of the agent mid-stream, then a restart: it resumes from its checkpoint. No line
is lost; the duplicates are at most one batch (sent, not yet checkpointed)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.logagent_procs import Agent, Rsyslog, Writer, seq_line, wait_all

BATCH_BYTES = 64 * 1024
LINES = 40_000
# A batch is whole chunks up to BATCH_BYTES, or one read (256 KiB) when a chunk is larger.
ONE_BATCH = 256 * 1024 // len(seq_line(1)) + 1


@pytest.mark.parametrize("output", ["stdout", "syslog"])
def test_kill9_then_restart(
    agents: Callable[..., Agent],
    logs_dir: Path,
    output: str,
    rsyslog_binary: str,
    tmp_path: Path,
) -> None:
    log = logs_dir / "app.log"
    args = ["--path", f"{log}*", "--batch-bytes", "64k"]
    server: Rsyslog | None = None
    if output == "syslog":
        server = Rsyslog(rsyslog_binary, tmp_path / "rsyslog").start()
        args += ["--output", "syslog", "--syslog-address", f"127.0.0.1:{server.port}"]
    try:
        agent = agents(*args).start()
        rotate_at = LINES // 2

        def rotate(_n: int) -> None:  # one rename rotation while the agent is down, too
            log.rename(log.with_name("app.log.1"))

        writer = Writer(log, LINES, rate=20_000, every=rotate_at, between=rotate)
        writer.start()
        time.sleep(0.8)
        assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
        time.sleep(0.7)  # the application keeps writing (and rotates) while the agent is down
        again = agents(*args).start()
        writer.finish()
        read = agent.stdout if server is None else server.read
        result = wait_all(read, LINES)
        assert not result.lost, str(result)
        assert result.duplicates <= ONE_BATCH, str(result)
        assert again.stop() == 0
    finally:
        if server is not None:
            server.stop()


def test_sigterm_drains_and_checkpoints(agents: Callable[..., Agent], logs_dir: Path) -> None:
    """A clean stop sends what was read and checkpoints it: a restart repeats nothing."""
    log = logs_dir / "app.log"
    Writer(log, 10_000).run()
    agent = agents("--path", str(log)).start()
    wait_all(agent.stdout, 10_000)
    assert agent.stop() == 0
    assert "stopped" in agent.stderr()
    Writer(log, 1000, start=10_001).run()
    agent.start()
    result = wait_all(agent.stdout, 11_000)
    assert not result.lost and result.duplicates == 0, str(result)
