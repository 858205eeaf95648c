"""podkit.runner as the proxies use it, with real processes: a second SIGTERM does not wait
for the drain, and a worker that keeps dying while it starts makes the supervisor give up."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import free_port, wait_for


@pytest.fixture
def silent_upstream() -> Iterator[tuple[int, list[socket.socket]]]:
    """An upstream that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in accepted:
        conn.close()


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "ambassador.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ambassador",
                "--admin-listen",
                f"127.0.0.1:{free_port()}",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def test_a_second_sigterm_exits_without_waiting_for_the_drain(
    tmp_path: Path, silent_upstream: tuple[int, list[socket.socket]]
) -> None:
    upstream, accepted = silent_upstream
    port = free_port()
    proc, log = start(
        tmp_path,
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        f"http://127.0.0.1:{upstream}",
        "--drain-timeout",
        "60s",
    )
    try:
        wait_for(lambda: "listening on" in log.read_text(), what="the ambassador")
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_for(lambda: accepted, what="the request at the upstream")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in log.read_text(), what="the drain")
        assert proc.poll() is None  # the drain waits for the request in flight
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 1
        assert "second SIGTERM" in log.read_text()
        client.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_that_keeps_dying_at_start_makes_the_supervisor_give_up(
    tmp_path: Path,
) -> None:
    # A port already taken by a socket without SO_REUSEPORT: every worker's bind fails.
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        proc, log = start(
            tmp_path,
            "--workers",
            "2",
            "--listen",
            f"127.0.0.1:{taken.getsockname()[1]}",
            "--upstream",
            "http://127.0.0.1:9",
        )
        try:
            assert proc.wait(timeout=60) == 1
        finally:
            proc.kill()
            proc.wait()
        text = log.read_text()
        assert "while starting; starting another in 0.4s" in text  # backing off
        assert "giving up" in text
    finally:
        taken.close()
