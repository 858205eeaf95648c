"""--workers N: processes sharing the port under a supervisor that keeps the admin port,
adds up the workers' counters, restarts a worker that dies, and drains them on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import metrics
from support.processes import Service, free_port, http_get, wait_for


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Service]:
    port = free_port()
    service = Service(
        [sys.executable, "-m", "echoserver", "--listen", f"127.0.0.1:{port}", "--name", "web"],
        port,
        tmp_path / "echo.log",
    ).start("/healthz")
    yield service
    service.stop()


@pytest.mark.parametrize("proxy", ["sidecar", "ambassador"])
def test_workers_share_the_port_and_the_supervisor_adds_them_up(
    tmp_path: Path, echo: Service, proxy: str
) -> None:
    port, admin = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        proxy,
        "--workers",
        "2",
        "--listen",
        f"127.0.0.1:{port}",
        "--admin-listen",
        f"127.0.0.1:{admin}",
        "--upstream",
        echo.base,
    ]
    if proxy == "sidecar":
        argv.append("--plain")
    service = Service(argv, admin, tmp_path / f"{proxy}.log").start("/readyz")
    try:
        assert service.proc is not None
        wait_for(lambda: len(children(service.proc.pid)) == 2, what="two workers")  # type: ignore[union-attr]
        for _ in range(20):
            status, text = http_get(f"http://127.0.0.1:{port}/")
            assert status == 200 and "server: web" in text

        def counted() -> bool:
            families = metrics.parse(service.get("/metrics")[1])
            return (
                metrics.value(families, f"{proxy}_requests_total", code="200", method="GET") == 20
            )

        wait_for(counted, what="the workers' reports")

        victim = sorted(children(service.proc.pid))[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: (
                len(children(service.proc.pid)) == 2  # type: ignore[union-attr]
                and victim not in children(service.proc.pid)
            ),
            what="a new worker",
        )  # type: ignore[union-attr]
        wait_for(lambda: service.get("/readyz")[0] == 200, what="ready again")
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 200
        workers = children(service.proc.pid)
        assert service.stop() == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
        assert "exited with status" in service.log()
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.stop(signal.SIGKILL)
