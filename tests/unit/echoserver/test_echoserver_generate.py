"""Responses made to order: status codes, n bytes, slow, drip, close."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestClient

from echoserver.generate import MAX_BYTES, PATTERN, pattern_bytes

if TYPE_CHECKING:  # the fixture's type, from this folder's conftest
    from conftest import RawExchange


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (200, "200 OK\n"),
        (201, "201 Created\n"),
        (204, ""),
        (205, ""),
        (304, ""),
        (404, "404 Not Found\n"),
        (418, "418 I'm a Teapot\n"),
        (502, "502 Bad Gateway\n"),
        (599, "599\n"),
    ],
)
async def test_status(client: TestClient, code: int, body: str) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, f"/status/{code}")
        assert response.status == code
        assert await response.text() == body
        if not body:
            assert "Content-Type" not in response.headers


@pytest.mark.parametrize("code", ["100", "199", "600", "abc", "-1"])
async def test_status_out_of_range(client: TestClient, code: str) -> None:
    response = await client.get(f"/status/{code}")
    assert response.status == 400
    assert "from 200 to 599" in await response.text()


@pytest.mark.parametrize("n", [0, 1, 64, 65, 65_536, 65_537, 200_000])
async def test_bytes_with_content_length(client: TestClient, n: int) -> None:
    response = await client.get(f"/bytes/{n}")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(n)
    assert "Transfer-Encoding" not in response.headers
    assert await response.read() == pattern_bytes(n)


async def test_bytes_chunked(client: TestClient) -> None:
    response = await client.get("/bytes/150000?chunked=1")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert await response.read() == pattern_bytes(150_000)


def test_pattern_is_printable_and_aligned() -> None:
    assert len(PATTERN) == 64 and PATTERN.endswith(b"\n")
    assert PATTERN[:-1].decode().isprintable()  # curl shows it as lines of text
    assert pattern_bytes(130) == PATTERN + PATTERN + PATTERN[:2]


async def test_bytes_head(raw: RawExchange) -> None:
    response = await raw(b"HEAD /bytes/1000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert "Content-Length: 1000" in response.head and response.body == b""


@pytest.mark.parametrize(
    "path", ["/bytes/abc", "/bytes/-5", f"/bytes/{MAX_BYTES + 1}", "/bytes/10?chunked=maybe"]
)
async def test_bytes_bad_requests(client: TestClient, path: str) -> None:
    assert (await client.get(path)).status == 400


async def test_slow(client: TestClient) -> None:
    started = time.monotonic()
    response = await client.get("/slow?delay=0.2")
    assert response.status == 200 and await response.text() == "slept 0.2s\n"
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("query", ["?delay=61", "?delay=-1", "?delay=soon", "?delay=nan"])
async def test_slow_bad_delay(client: TestClient, query: str) -> None:
    response = await client.get("/slow" + query)
    assert response.status == 400 and "delay" in await response.text()


async def test_drip_sends_chunks_apart(client: TestClient) -> None:
    started = time.monotonic()
    response = await client.get("/drip?chunks=3&interval=0.1")
    assert response.headers["Transfer-Encoding"] == "chunked"
    chunks = []
    async for data, end_of_chunk in response.content.iter_chunks():
        chunks.append(data)
        assert end_of_chunk
    assert b"".join(chunks) == b"chunk 1/3\nchunk 2/3\nchunk 3/3\n"
    assert len(chunks) == 3
    assert time.monotonic() - started >= 0.2


async def test_drip_of_nothing(client: TestClient) -> None:
    assert await (await client.get("/drip?chunks=0")).read() == b""


async def test_close_answers_and_closes(raw: RawExchange) -> None:
    # No Connection: close from the client: the server closes on its own (read() ends).
    response = await raw(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.head[0] == "HTTP/1.1 200 OK"
    assert "Connection: close" in response.head
    assert response.body == b"closing the connection\n"


async def test_keep_alive_elsewhere(client: TestClient) -> None:
    response = await client.get("/status/200")
    assert response.headers.get("Connection", "keep-alive").lower() == "keep-alive"
