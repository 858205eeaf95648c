from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.logagent_procs import Agent, Rsyslog, rsyslogd_binary
from support.tools import require


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Make agents (`agents(*args, name=..., env=...)`); all stopped at the end."""
    made: list[Agent] = []

    def make(*args: str, name: str = "agent", env: dict[str, str] | None = None) -> Agent:
        agent = Agent(tmp_path / name, list(args), env or {})
        made.append(agent)
        return agent

    yield make
    for agent in made:
        try:
            agent.stop()
        except Exception:
            pass


@pytest.fixture
def rsyslog_binary() -> str:
    binary = rsyslogd_binary()
    require("rsyslogd", binary is not None, "install rsyslog (scripts/bootstrap-host.sh)")
    assert binary is not None
    return binary


@pytest.fixture
def rsyslog(rsyslog_binary: str, tmp_path: Path) -> Iterator[Rsyslog]:
    server = Rsyslog(rsyslog_binary, tmp_path / "rsyslog").start()
    yield server
    server.stop()


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path
