"""Fixtures of the gitsync integration tier: real Git servers (smart HTTP with basic auth,
SSH) and gitsync processes in push and pull mode against them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gitsync_process import GitSync, StartGitSync
from support.gitsync_servers import HttpGitServer, SshGitServer
from support.tools import require_binary


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[HttpGitServer]:
    require_binary("git")
    server = HttpGitServer(tmp_path / "http").start()
    yield server
    server.stop()


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshGitServer]:
    require_binary("git")
    server = SshGitServer(tmp_path / "ssh").start()
    yield server
    server.stop()


@pytest.fixture
def password_file(tmp_path: Path, http_server: HttpGitServer) -> Path:
    path = tmp_path / "password"
    path.write_text(http_server.password + "\n")
    return path


@pytest.fixture
def gitsync(tmp_path: Path) -> Iterator[StartGitSync]:
    """Start gitsync processes (stopped at the end): gitsync(*args, name=...)."""
    started: list[GitSync] = []

    def start(*args: str, name: str = "gitsync", env: dict[str, str] | None = None) -> GitSync:
        process = GitSync(list(args), tmp_path / f"{name}.log", env=env or {}).start()
        started.append(process)
        return process

    yield start
    for process in started:
        try:
            process.stop()
        except Exception:  # a test may have killed it already
            pass
