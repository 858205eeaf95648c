"""Large bodies stream through the real process in bounded memory, both ways.

100 MB go up (Content-Length, then chunked) and come down (/bytes) over raw sockets, and the
server's peak resident memory (VmHWM) stays within a fraction of that.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

import pytest
from support.processes import Service

from echoserver.generate import PATTERN

SIZE = 100 * 1024 * 1024
BLOCK = os.urandom(1024 * 1024)
# What the server may add to its peak memory while 100 MB pass: buffers, not the body.
GROWTH_BOUND = 32 * 1024 * 1024


def memory(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def peak(service: Service) -> int:
    assert service.proc is not None
    return memory(service.proc.pid, "VmHWM")


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def upload(port: int, chunked: bool) -> tuple[dict[str, object], str]:
    """POST SIZE bytes to /upload, 1 MiB per send; return the JSON answer and our own hash."""
    digest = hashlib.sha256()
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {SIZE}"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(
            f"POST /upload HTTP/1.1\r\nHost: x\r\n{framing}\r\nConnection: close\r\n\r\n".encode()
        )
        for _ in range(SIZE // len(BLOCK)):
            digest.update(BLOCK)
            if chunked:
                conn.sendall(b"%x\r\n%s\r\n" % (len(BLOCK), BLOCK))
            else:
                conn.sendall(BLOCK)
        if chunked:
            conn.sendall(b"0\r\n\r\n")
        head, _, body = read_all(conn).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head
    return json.loads(body), digest.hexdigest()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100_mb_upload_streams_in_bounded_memory(echo: Service, chunked: bool) -> None:
    echo.get("/")  # warm up: the first request's allocations are not the body's
    before = peak(echo)

    answer, sha256 = upload(echo.port, chunked)

    assert answer == {"body_bytes": SIZE, "body_sha256": sha256}
    growth = peak(echo) - before
    assert growth < GROWTH_BOUND, f"peak RSS grew by {growth / 2**20:.1f} MiB for a 100 MiB body"


def test_100_mb_download_to_a_slow_reader_in_bounded_memory(echo: Service) -> None:
    echo.get("/bytes/1000")
    before = peak(echo)
    digest, expected, received = hashlib.sha256(), hashlib.sha256(), 0
    with socket.create_connection(("127.0.0.1", echo.port), timeout=60) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        conn.sendall(f"GET /bytes/{SIZE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        head, _, first = head.partition(b"\r\n\r\n")
        assert f"Content-Length: {SIZE}".encode() in head
        digest.update(first)
        received += len(first)
        time.sleep(1.5)  # a server without back-pressure would now hold the rest in memory
        stalled = peak(echo) - before
        while chunk := conn.recv(1024 * 1024):
            digest.update(chunk)
            received += len(chunk)
    assert received == SIZE
    line = PATTERN * (1024 * 1024 // len(PATTERN))
    for _ in range(SIZE // len(line)):
        expected.update(line)
    assert digest.hexdigest() == expected.hexdigest()
    assert stalled < GROWTH_BOUND, f"peak RSS grew by {stalled / 2**20:.1f} MiB while stalled"
    assert peak(echo) - before < GROWTH_BOUND
