"""The echo: text for people, JSON for tests, headers as received, bodies counted and hashed."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestClient

if TYPE_CHECKING:  # the fixture's type, from this folder's conftest
    from conftest import RawExchange

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


async def test_text_page_shows_the_request_as_received(raw: RawExchange, server_name: str) -> None:
    response = await raw(
        b"GET /a/b?x=1&y=%20z HTTP/1.1\r\n"
        b"Host: example.test\r\n"
        b"X-B: 2\r\n"
        b"x-a: 1\r\n"
        b"X-B: 3\r\n"
        b"X-Forwarded-For: 203.0.113.7\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert response.head[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: text/plain; charset=utf-8" in response.head
    assert response.body.decode().splitlines() == [
        f"server: {server_name}",
        "GET /a/b?x=1&y=%20z HTTP/1.1",
        f"client: 127.0.0.1:{response.local_port}",
        "Host: example.test",
        "X-B: 2",  # order, case and repeats as sent
        "x-a: 1",
        "X-B: 3",
        "X-Forwarded-For: 203.0.113.7",
        "Connection: close",
    ]


async def test_http_1_0_and_bytes_that_are_not_utf8(raw: RawExchange) -> None:
    response = await raw(b"GET /old HTTP/1.0\r\nX-Bin: caf\xe9\r\n\r\n")
    lines = response.body.decode().splitlines()
    assert lines[1] == "GET /old HTTP/1.0"
    assert lines[3] == "X-Bin: caf\\xe9"


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("?format=json", {}, id="query"),
        pytest.param("", {"Accept": "application/json"}, id="accept"),
        pytest.param("", {"Accept": "text/html, application/json;q=0.9"}, id="accept-list"),
    ],
)
async def test_json_when_asked(
    client: TestClient, server_name: str, query: str, headers: dict[str, str]
) -> None:
    response = await client.get("/some/path" + query, headers={"X-Trace": "t1", **headers})
    assert response.status == 200
    assert response.content_type == "application/json"
    data = await response.json()
    assert set(data) == {
        "server",
        "method",
        "path",
        "query",
        "http_version",
        "client",
        "headers",
        "body_bytes",
        "body_sha256",
    }
    assert data["server"] == server_name and data["method"] == "GET"
    assert data["path"] == "/some/path" and data["query"] == query.lstrip("?")
    assert data["http_version"] == "1.1"
    assert data["client"].startswith("127.0.0.1:")
    assert ["X-Trace", "t1"] in data["headers"]
    assert (data["body_bytes"], data["body_sha256"]) == (0, EMPTY_SHA256)


async def test_format_text_wins_over_accept(client: TestClient, server_name: str) -> None:
    response = await client.get("/?format=text", headers={"Accept": "application/json"})
    assert (await response.text()).startswith(f"server: {server_name}\n")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"])
async def test_any_method_on_any_unknown_path(client: TestClient, method: str) -> None:
    response = await client.request(method, "/no/such/thing?q=1")
    assert response.status == 200
    assert (await response.text()).splitlines()[1] == f"{method} /no/such/thing?q=1 HTTP/1.1"


async def test_a_body_on_the_echo_is_counted_and_hashed(client: TestClient) -> None:
    text = await (await client.post("/", data=b"hello")).text()
    sha = hashlib.sha256(b"hello").hexdigest()
    assert text.endswith(f"\n\nbody: 5 bytes, sha256 {sha}\n")
    data = await (await client.put("/x?format=json", data=b"hello")).json()
    assert (data["method"], data["body_bytes"], data["body_sha256"]) == ("PUT", 5, sha)


async def test_no_body_line_without_a_body(client: TestClient) -> None:
    assert "body:" not in await (await client.get("/")).text()


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_upload_answers_size_and_sha256(client: TestClient, method: str) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    response = await client.request(method, "/upload", data=io.BytesIO(body))
    assert response.status == 200
    assert await response.json() == {
        "body_bytes": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


async def test_chunked_upload(client: TestClient) -> None:
    parts = [os.urandom(n) for n in (1, 1000, 70_000, 0, 5)]

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    response = await client.post("/upload", data=stream())
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    data = await response.json()
    assert data["body_bytes"] == sum(map(len, parts))
    assert data["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


async def test_every_response_says_which_server(client: TestClient, server_name: str) -> None:
    for path in ("/", "/healthz", "/status/503", "/bytes/3", "/nowhere"):
        assert (await client.get(path)).headers["X-Echo-Server"] == server_name


async def test_probes(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and await response.text() == "ok\n"
    assert (await client.get("/readyz")).status == 200
