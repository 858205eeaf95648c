from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.processes import Service, free_port

StartEcho = Callable[..., Service]


@pytest.fixture
def start_echo(tmp_path: Path) -> Iterator[StartEcho]:
    """Start `python -m echoserver` on a free loopback port; every one is stopped at the end."""
    services: list[Service] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Service:
        port = free_port()
        service = Service(
            [sys.executable, "-m", "echoserver", "--listen", f"127.0.0.1:{port}", *args],
            port,
            tmp_path / f"echoserver-{len(services)}.log",
            env=env,
        )
        services.append(service)
        return service.start(ready_path="/healthz")

    yield start
    for service in services:
        try:
            service.stop()
        except Exception:
            pass


@pytest.fixture
def echo(start_echo: StartEcho) -> Service:
    return start_echo("--name", "itest")
