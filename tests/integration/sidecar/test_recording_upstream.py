"""The recording upstream itself: the corpus tests trust it to see every byte."""

from __future__ import annotations

import socket

import pytest
from support.recording_upstream import RESPONSE, RecordingUpstream, request_length

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "length"),
    [
        pytest.param(GET, len(GET), id="get"),
        pytest.param(POST, len(POST), id="content-length"),
        pytest.param(CHUNKED, len(CHUNKED), id="chunked"),
        pytest.param(CHUNKED[:-2] + b"X-T: 1\r\n\r\n", len(CHUNKED) + 8, id="trailer"),
        pytest.param(CHUNKED[:-2] + b"X-T: 1\r\n", None, id="trailer-incomplete"),
        pytest.param(GET + POST, len(GET), id="pipelined"),
        pytest.param(POST[:-1], None, id="body-incomplete"),
        pytest.param(CHUNKED[:-2], None, id="last-chunk-incomplete"),
        pytest.param(GET[:-2], None, id="head-incomplete"),
        pytest.param(POST.replace(b": 5", b": x"), None, id="content-length-invalid"),
    ],
)
def test_request_length(data: bytes, length: int | None) -> None:
    assert request_length(data) == length


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def test_records_and_answers_each_request_on_a_kept_alive_connection() -> None:
    with RecordingUpstream() as upstream:
        with socket.create_connection(("127.0.0.1", upstream.port), timeout=5) as sock:
            sock.sendall(GET + POST)
            assert read_exactly(sock, 2 * len(RESPONSE)) == 2 * RESPONSE
            sock.sendall(CHUNKED[:20])
            sock.sendall(CHUNKED[20:])
            assert read_exactly(sock, len(RESPONSE)) == RESPONSE
        assert upstream.received() == GET + POST + CHUNKED
        assert upstream.requests == 3


def test_unframed_bytes_are_recorded_and_unanswered_and_clear_forgets() -> None:
    with RecordingUpstream() as upstream:
        with socket.create_connection(("127.0.0.1", upstream.port), timeout=5) as first:
            first.sendall(GET)
            read_exactly(first, len(RESPONSE))
        with socket.create_connection(("127.0.0.1", upstream.port), timeout=0.3) as second:
            second.sendall(b"garbage")
            with pytest.raises(TimeoutError):
                second.recv(1)
            assert upstream.connections() == [GET, b"garbage"]
            upstream.clear()
            assert upstream.received() == b"" and upstream.requests == 0
            second.sendall(b" more")
            with pytest.raises(TimeoutError):
                second.recv(1)
            assert upstream.connections() == [b" more"]
