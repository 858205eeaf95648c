"""The sidecar when things go wrong: the main container down or slow (502, 504, /readyz),
and clients that hold connections without sending a request (slowloris)."""

from __future__ import annotations

import socket
import time

import pytest
from support import metrics
from support.processes import free_port, wait_for
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Reply,
    Sidecar,
    StartEcho,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    read_reply,
    start_echo_fixture,
    start_sidecar_fixture,
)


def request(sidecar: Sidecar, method: str, target: str, body: bytes = b"") -> Reply:
    with sidecar.connect() as sock:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        return read_reply(sock.makefile("rb"), method=method)


def rejected(sidecar: Sidecar, reason: str) -> float:
    status, text = sidecar.admin("/metrics")
    assert status == 200
    return metrics.value(metrics.parse(text), "sidecar_rejected_requests_total", reason=reason)


# -- the main container down, coming up, going away -------------------------------------------


def test_upstream_down_502_and_unready_until_it_comes_up(
    start_sidecar: StartSidecar, start_echo: StartEcho
) -> None:
    port = free_port()
    sidecar = start_sidecar(upstream=f"http://127.0.0.1:{port}")
    status, text = sidecar.admin("/readyz")
    assert status == 503 and f"127.0.0.1:{port}" in text, text
    for method in ("GET", "POST"):
        reply = request(sidecar, method, "/", b"x" if method == "POST" else b"")
        assert reply.status == 502, reply
        assert reply.header("Content-Type") == "text/plain; charset=utf-8"
        assert reply.body.decode().startswith("502 Bad Gateway: "), reply.body
    assert sidecar.service.proc is not None and sidecar.service.proc.poll() is None

    late = start_echo("--name", "late", port=port)
    wait_for(lambda: sidecar.admin("/readyz")[0] == 200, timeout=10, what="/readyz 200")
    reply = request(sidecar, "GET", "/")
    assert reply.status == 200 and reply.body.startswith(b"server: late\n"), reply

    late.stop()
    wait_for(lambda: sidecar.admin("/readyz")[0] == 503, timeout=10, what="/readyz 503")
    assert request(sidecar, "GET", "/").status == 502


@pytest.mark.parametrize(
    "method",
    [
        pytest.param(
            "GET",
        ),
        "POST",
    ],
)
def test_upstream_slower_than_read_timeout_gives_504(
    start_sidecar: StartSidecar, method: str
) -> None:
    sidecar = start_sidecar("--read-timeout", "1s")
    reply = request(sidecar, method, "/slow?delay=3", b"x" if method == "POST" else b"")
    assert reply.status == 504, reply
    assert reply.body.decode().startswith("504 Gateway Timeout: "), reply.body
    assert request(sidecar, method, "/slow?delay=0.1").status == 200  # and then it goes on


# -- slowloris --------------------------------------------------------------------------------


HEAD = b"GET /slowloris HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 30 + b"\r\n\r\n"


def drip(sidecar: Sidecar) -> tuple[int, bytes, bool]:
    """Send HEAD one byte every 0.3 s (at most len(HEAD) * 0.3 s); (bytes sent, bytes
    received, whether the sidecar closed the connection)."""
    sent, got, closed = 0, b"", False
    with sidecar.connect() as sock:
        sock.settimeout(0.3)
        while not closed and sent < len(HEAD):
            try:
                sock.sendall(HEAD[sent : sent + 1])
                sent += 1
            except OSError:
                return sent, got, True
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return sent, got, True
            got += data
            closed = not data
    return sent, got, closed


def test_request_head_dripped_byte_by_byte_gets_408(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--header-timeout", "1s")
    sent, got, closed = drip(sidecar)
    assert closed, f"the whole head went through byte by byte; got {got!r}"
    assert sent < len(HEAD)
    assert got == b"" or got.startswith(b"HTTP/1.1 408 "), got
    assert rejected(sidecar, "header_timeout") >= 1


def test_header_timeout_is_counted_once(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--header-timeout", "1s")
    drip(sidecar)
    assert rejected(sidecar, "header_timeout") == 1


def test_tls_connection_that_sends_nothing_is_closed(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--header-timeout", "1s")
    with sidecar.connect() as sock:
        sock.settimeout(10)
        try:
            data = sock.recv(4096)
        except (ConnectionResetError, OSError) as exc:
            assert not isinstance(exc, TimeoutError), "still open after 10 s"
            data = b""
    assert data == b""  # closed without a response: nothing was asked


def test_tcp_connection_that_never_starts_tls_is_closed_by_the_header_timeout(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = start_sidecar("--header-timeout", "1s")
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as sock:
        started = time.monotonic()
        try:
            data = sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"still open {time.monotonic() - started:.1f}s after connecting")
        except ConnectionResetError:
            data = b""
    assert data == b""
