"""The sidecar as an HTTP reverse proxy, over real TLS to a real echo server: kept
connections on both sides, chunked bodies, WebSocket, pipelining, Expect: 100-continue,
HSTS and the redirect listener."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from contextlib import closing
from typing import Any

import aiohttp
import pytest
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Sidecar,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    read_reply,
    sidecar_fixture,
    start_echo_fixture,
    start_sidecar_fixture,
)

from echoserver.generate import pattern_bytes


def https(sidecar: Sidecar) -> http.client.HTTPSConnection:
    assert sidecar.tls is not None
    return http.client.HTTPSConnection("localhost", sidecar.port, context=sidecar.tls, timeout=10)


def get_json(conn: http.client.HTTPConnection, path: str = "/?format=json") -> dict[str, Any]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    seen: dict[str, Any] = json.loads(body)
    return seen


def upstream_port(seen: dict[str, Any]) -> int:
    """The port the echo server saw the sidecar's connection come from."""
    return int(str(seen["client"]).rsplit(":", 1)[1])


# -- keep-alive -------------------------------------------------------------------------------


def test_one_client_connection_carries_many_requests_over_few_upstream_ones(
    sidecar: Sidecar,
) -> None:
    ports = []
    with closing(https(sidecar)) as conn:
        get_json(conn)
        sock = conn.sock
        for _ in range(50):
            ports.append(upstream_port(get_json(conn)))
            assert conn.sock is sock, "the sidecar closed a kept client connection"
    assert len(set(ports)) <= 3, f"upstream connections not reused: {sorted(set(ports))}"


def test_upstream_connections_are_pooled_across_client_connections(sidecar: Sidecar) -> None:
    ports = []
    for _ in range(20):
        with closing(https(sidecar)) as conn:
            ports.append(upstream_port(get_json(conn)))
    assert len(set(ports)) <= 3, f"upstream connections not reused: {sorted(set(ports))}"


# -- chunked bodies ---------------------------------------------------------------------------


def test_chunked_upload_arrives_whole(sidecar: Sidecar) -> None:
    pieces = [b"a", os.urandom(100), os.urandom(65536), os.urandom(3), os.urandom(20000)]
    body = b"".join(pieces)
    with sidecar.connect() as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200, reply
    seen = json.loads(reply.body)
    assert seen == {"body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


def test_chunked_download_arrives_chunked_and_whole(sidecar: Sidecar) -> None:
    with sidecar.connect() as sock:
        sock.sendall(b"GET /bytes/300000?chunked=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200
    assert reply.header("Transfer-Encoding") == "chunked"
    assert reply.header("Content-Length") is None
    assert reply.body == pattern_bytes(300000)


def test_dripped_chunks_all_arrive(sidecar: Sidecar) -> None:
    with sidecar.connect() as sock:
        sock.sendall(b"GET /drip?chunks=5&interval=0.05 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200
    assert reply.body.decode().splitlines() == [f"chunk {i}/5" for i in range(1, 6)]


def test_http10_client_gets_a_chunked_response_delimited_by_close(sidecar: Sidecar) -> None:
    with sidecar.connect() as sock:
        sock.sendall(b"GET /bytes/70000?chunked=1 HTTP/1.0\r\nHost: localhost\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200
    assert reply.header("Transfer-Encoding") is None  # HTTP/1.0 has no chunked coding
    assert reply.body == pattern_bytes(70000)


def test_http10_request_without_host_is_answered(sidecar: Sidecar) -> None:
    """A health checker's bare HTTP/1.0 request: forwarded as HTTP/1.1, with the address it
    reached as Host (the main container, here aiohttp, refuses HTTP/1.1 without one)."""
    with sidecar.connect() as sock:
        sock.sendall(b"OPTIONS /?format=json HTTP/1.0\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200, reply.body
    headers = json.loads(reply.body)["headers"]
    assert ["Host", f"127.0.0.1:{sidecar.port}"] in headers


def test_absolute_form_reaches_the_main_container_in_origin_form(sidecar: Sidecar) -> None:
    with sidecar.connect() as sock:
        sock.sendall(
            b"GET https://app.example/p?format=json HTTP/1.1\r\nHost: other.example\r\n"
            b"Connection: close\r\n\r\n"
        )
        reply = read_reply(sock.makefile("rb"))
    seen = json.loads(reply.body)
    assert (seen["path"], seen["query"]) == ("/p", "format=json")
    assert ["Host", "app.example"] in seen["headers"]
    assert ["X-Forwarded-Host", "app.example"] in seen["headers"]


# -- WebSocket --------------------------------------------------------------------------------


async def test_websocket_echo_text_and_binary(sidecar: Sidecar) -> None:
    assert sidecar.tls is not None
    url = f"wss://localhost:{sidecar.port}/ws"
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.ws_connect(url, ssl=sidecar.tls) as ws,
    ):
        for i in range(5):
            await ws.send_str(f"hello {i} ✓")
            assert await ws.receive_str() == f"hello {i} ✓"
            data = os.urandom(1 + i * 40000)
            await ws.send_bytes(data)
            assert await ws.receive_bytes() == data
        await ws.close()
    assert ws.closed


async def test_websocket_connection_is_never_reused_for_requests(sidecar: Sidecar) -> None:
    """The upstream connection a 101 turned into a tunnel is the tunnel's: requests from
    other clients, during it and after it, go on other connections and get their answers."""
    assert sidecar.tls is not None
    url = f"wss://localhost:{sidecar.port}"
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.ws_connect(f"{url}/ws", ssl=sidecar.tls) as ws:
            for i in range(3):
                async with aiohttp.ClientSession(timeout=timeout) as other:  # a new client
                    async with other.get(
                        f"https://localhost:{sidecar.port}/during", ssl=sidecar.tls
                    ) as response:
                        assert response.status == 200
                        assert "GET /during HTTP/1.1" in await response.text()
                await ws.send_str(f"still mine {i}")
                assert await ws.receive_str() == f"still mine {i}"
        assert ws.closed
        for _ in range(3):
            async with aiohttp.ClientSession(timeout=timeout) as other:
                async with other.get(
                    f"https://localhost:{sidecar.port}/after", ssl=sidecar.tls
                ) as response:
                    assert response.status == 200
                    assert "GET /after HTTP/1.1" in await response.text()


# -- pipelining and Expect --------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(sidecar: Sidecar) -> None:
    paths = ["/first", "/second?x=1", "/third"]
    batch = b"".join(
        b"GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n"
        % (path.encode(), b"Connection: close\r\n" if i == len(paths) - 1 else b"")
        for i, path in enumerate(paths)
    )
    with sidecar.connect() as sock:
        sock.sendall(batch)  # one TLS write
        stream = sock.makefile("rb")
        replies = [read_reply(stream) for _ in paths]
        assert stream.read() == b""  # closed after the third, as asked
    for path, reply in zip(paths, replies, strict=True):
        assert reply.status == 200
        assert reply.body.decode().splitlines()[1] == f"GET {path} HTTP/1.1"


def test_expect_100_continue_waits_for_the_go_ahead(sidecar: Sidecar) -> None:
    body = os.urandom(50000)
    with sidecar.connect() as sock:
        sock.sendall(
            b"PUT /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
            b"Expect: 100-continue\r\n\r\n" % len(body)
        )
        stream = sock.makefile("rb")
        interim = read_reply(stream)
        assert interim.status == 100, interim
        sock.sendall(body)
        reply = read_reply(stream)
    assert reply.status == 200, reply
    seen = json.loads(reply.body)
    assert seen == {"body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


# -- HSTS and the redirect listener -----------------------------------------------------------


def test_hsts_header_is_added_when_configured(start_sidecar: StartSidecar) -> None:
    with closing(https(start_sidecar())) as without:
        without.request("GET", "/")
        response = without.getresponse()
        response.read()
        assert response.getheader("Strict-Transport-Security") is None

    with closing(https(start_sidecar("--hsts", "600"))) as conn:
        for path in ("/", "/status/404", "/bytes/10"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.headers.get_all("Strict-Transport-Security") == ["max-age=600"], path


def redirect(port: int, method: str, target: str, host: str) -> tuple[int, str | None, bytes]:
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        body = b"x" if method == "POST" else None
        conn.request(method, target, body=body, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.getheader("Location"), response.read()


@pytest.mark.parametrize(
    ("method", "target", "host", "location"),
    [
        ("GET", "/path?query=1", "example.com", "https://example.com/path?query=1"),
        ("GET", "/", "example.com:8080", "https://example.com/"),
        ("POST", "/form", "example.com", "https://example.com/form"),
        ("GET", "/a%20b/c?x=%2F&y", "example.com", "https://example.com/a%20b/c?x=%2F&y"),
    ],
)
def test_redirect_listener_answers_308_to_https(
    start_sidecar: StartSidecar, method: str, target: str, host: str, location: str
) -> None:
    sidecar = start_sidecar(redirect=True)
    assert sidecar.redirect_port is not None
    status, got, _ = redirect(sidecar.redirect_port, method, target, host)
    assert (status, got) == (308, location)


def test_redirect_uses_the_configured_https_port(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--redirect-https-port", "8443", redirect=True)
    assert sidecar.redirect_port is not None
    status, location, _ = redirect(sidecar.redirect_port, "GET", "/p?q=1", "example.com:80")
    assert (status, location) == (308, "https://example.com:8443/p?q=1")


def test_redirect_drops_the_port_of_an_ipv6_host(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar(redirect=True)
    assert sidecar.redirect_port is not None
    status, location, _ = redirect(sidecar.redirect_port, "GET", "/p", "[::1]:8080")
    assert (status, location) == (308, "https://[::1]/p")


@pytest.mark.parametrize(
    "host",
    [b"user@elsewhere.example", b"example.com/evil", b"exa mple.com", b"\xffexample.com", b""],
)
def test_redirect_refuses_a_host_that_is_no_host(start_sidecar: StartSidecar, host: bytes) -> None:
    """Nothing but host[:port] goes into Location: no userinfo, path or stray bytes."""
    sidecar = start_sidecar(redirect=True)
    assert sidecar.redirect_port is not None
    with socket.create_connection(("127.0.0.1", sidecar.redirect_port), timeout=10) as sock:
        sock.sendall(b"GET /p HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host)
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 400 and reply.header("Location") is None


def test_plain_sidecar_serves_the_echo(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar(plain=True)
    with closing(http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)) as conn:
        seen = get_json(conn)
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert headers["x-forwarded-proto"] == "http"
    assert seen["server"] == "web"
