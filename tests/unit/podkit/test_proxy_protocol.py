"""The proxy engine byte for byte: requests fed into a client protocol on a fake transport,
the upstream answered by hand."""

from __future__ import annotations

import ipaddress

import pytest
from proxy_fakes import Harness, settle

from podkit.proxy import ProxySettings
from podkit.proxy.connection import head_end
from podkit.proxy.headers import authority

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def head_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


async def test_get_is_forwarded_with_forwarding_headers_and_without_hop_by_hop() -> None:
    h = Harness()
    await h.send(
        b"GET /a?b=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\n"
        b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: gopher\r\nAccept: */*\r\n\r\n"
    )
    lines = head_lines(h.upstream.sent())
    assert lines[0] == b"GET /a?b=1 HTTP/1.1"
    assert b"Host: example.test" in lines and b"Accept: */*" in lines
    assert b"X-Forwarded-For: 10.0.0.7" in lines  # untrusted peer: replaced, not appended
    assert b"X-Forwarded-Proto: https" in lines
    assert b"X-Forwarded-Host: example.test" in lines
    for hop in (b"Connection", b"Keep-Alive", b"TE", b"Proxy-Connection"):
        assert not any(line.startswith(hop + b":") for line in lines), hop
    await h.reply(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\n"
        b"Content-Length: 2\r\nServer: app\r\n\r\nok"
    )
    response = h.received()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\nok")
    assert b"Keep-Alive" not in response and b"Server: app" in response
    assert not h.transport.closed
    assert h.upstream.idle == [h.upstream.conns[0]]  # back in the pool


async def test_trusted_proxy_extends_x_forwarded_headers() -> None:
    settings = ProxySettings(
        trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),), forwarded=True, via=b"1.1 sidecar"
    )
    h = Harness(settings)
    await h.send(
        b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\n"
        b"X-Forwarded-Proto: http\r\nX-Forwarded-Host: outer.test\r\n\r\n"
    )
    lines = head_lines(h.upstream.sent())
    assert b"X-Forwarded-For: 1.2.3.4, 10.0.0.7" in lines
    assert b"X-Forwarded-Proto: http" in lines
    assert b"X-Forwarded-Host: outer.test" in lines
    assert b'Forwarded: for=10.0.0.7;proto=https;host="a.test"' in lines
    assert b"Via: 1.1 sidecar" in lines


async def test_client_identity_cannot_be_forged() -> None:
    """The service's identity lines go on as given, once; every client copy of a name in
    `identity_headers` is dropped, whatever its spelling, with or without an identity."""
    forged = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Client-Cert-Subject: CN=admin\r\n"
        b"x-forwarded-client-cert: Subject=CN=admin\r\nCLIENT-CERT: :YWRtaW4=:\r\n\r\n"
    )
    settings = ProxySettings(
        identity_headers=(b"x-client-cert-subject", b"x-forwarded-client-cert", b"client-cert")
    )
    h = Harness(settings)
    await h.send(forged)
    sent = h.upstream.sent()
    assert b"admin" not in sent and b"YWRtaW4" not in sent
    lines = b'X-Forwarded-Client-Cert: Hash=ab;Subject="CN=alice"\r\n'
    h = Harness(settings, identity=lines)
    await h.send(forged)
    sent = h.upstream.sent()
    assert sent.count(lines) == 1 and b"admin" not in sent and b"YWRtaW4" not in sent
    assert b"Client-Cert" not in sent.replace(b"X-Forwarded-Client-Cert", b"")


async def test_headers_named_in_connection_are_dropped() -> None:
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n")
    assert b"X-Secret" not in h.upstream.sent()


async def test_chunked_request_and_response() -> None:
    h = Harness()
    await h.send(
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
    )
    sent = h.upstream.sent()
    assert b"Transfer-Encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    await h.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n")
    response = h.received()
    assert b"Transfer-Encoding: chunked" in response
    assert response.endswith(b"\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("target", "host", "path"),
    [
        (b"http://example.com/a/b?x=1", b"example.com", b"/a/b?x=1"),
        (b"http://example.com", b"example.com", b"/"),
        (b"HTTPS://Example.com:8443?q", b"Example.com:8443", b"/?q"),
        (b"http://[::1]:8080/x", b"[::1]:8080", b"/x"),
    ],
)
async def test_absolute_form_goes_on_in_origin_form_with_its_host(
    target: bytes, host: bytes, path: bytes
) -> None:
    """RFC 9112 §3.2.2: a proxy replaces the received Host with the target's authority, so
    the upstream and X-Forwarded-Host cannot see two different hosts."""
    h = Harness()
    await h.send(b"GET %s HTTP/1.1\r\nHost: other.example\r\n\r\n" % target)
    lines = head_lines(h.upstream.sent())
    assert lines[0] == b"GET %s HTTP/1.1" % path
    assert b"Host: " + host in lines and b"X-Forwarded-Host: " + host in lines
    assert not any(b"other.example" in line for line in lines)


async def test_http10_request_without_host_gets_one_upstream() -> None:
    """HTTP/1.1 requires Host (an upstream like nginx refuses a request without one): the
    address the client reached stands in, as nginx's server name does."""
    h = Harness()
    await h.send(b"OPTIONS / HTTP/1.0\r\nUser-Agent: health-check\r\n\r\n")
    lines = head_lines(h.upstream.sent())
    assert lines[:2] == [b"OPTIONS / HTTP/1.1", b"Host: 10.0.0.1:8443"]
    assert not any(line.lower().startswith(b"x-forwarded-host") for line in lines)


@pytest.mark.parametrize(
    ("sockname", "expected"),
    [
        (("10.0.0.1", 8443), b"10.0.0.1:8443"),
        (("::1", 8443, 0, 0), b"[::1]:8443"),
        ("/run/proxy.sock", b"localhost"),
    ],
)
def test_authority_of_a_listening_address(sockname: object, expected: bytes) -> None:
    assert authority(sockname) == expected


async def test_request_trailers_are_dropped_and_never_reach_the_next_request() -> None:
    h = Harness(settings=ProxySettings(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),)))
    await h.send(
        b"POST /1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n"
        b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: gopher\r\nConnection: X-Kept\r\n\r\n"
    )
    assert h.upstream.sent().endswith(b"\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    await h.reply(OK)
    h.received()
    await h.send(b"GET /2 HTTP/1.1\r\nHost: a\r\nX-Kept: yes\r\n\r\n")
    lines = head_lines(h.upstream.sent())
    assert b"X-Forwarded-For: 10.0.0.7" in lines and b"X-Forwarded-Proto: https" in lines
    assert b"X-Kept: yes" in lines


async def test_chunked_response_to_http10_client_is_close_delimited() -> None:
    h = Harness()
    await h.send(b"GET / HTTP/1.0\r\n\r\n")
    await h.reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    response = h.received()
    assert b"Transfer-Encoding" not in response and response.endswith(b"\r\n\r\nhi")
    assert h.transport.closed


async def test_close_delimited_response_becomes_chunked() -> None:
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome bytes")
    h.upstream.conns[0].connection_lost(None)
    response = h.received()
    assert b"Transfer-Encoding: chunked" in response
    assert response.endswith(b"a\r\nsome bytes\r\n0\r\n\r\n")
    assert not h.transport.closed  # the client keeps its connection


async def test_head_response_has_no_body_and_the_connection_is_reused() -> None:
    h = Harness()
    await h.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert h.received().endswith(b"Content-Length: 1000\r\n\r\n")
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert len(h.upstream.conns) == 1
    await h.reply(OK)
    assert h.received().endswith(b"ok")


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses(status: int) -> None:
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(b"HTTP/1.1 %d X\r\nETag: 1\r\n\r\n" % status)
    response = h.received()
    assert response.endswith(b"ETag: 1\r\n\r\n") and b"chunked" not in response


async def test_pipelined_requests_are_answered_in_order() -> None:
    h = Harness()
    await h.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert head_lines(h.upstream.sent())[0] == b"GET /1 HTTP/1.1"
    await h.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
    assert h.received().endswith(b"\r\n\r\n1")
    assert head_lines(h.upstream.sent())[0] == b"GET /2 HTTP/1.1"
    await h.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
    assert h.received().endswith(b"\r\n\r\n2")


async def test_expect_100_continue_is_relayed() -> None:
    h = Harness()
    await h.send(b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert b"Expect: 100-continue" in h.upstream.sent()
    await h.reply(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert h.received() == b"HTTP/1.1 100 Continue\r\n\r\n"
    await h.send(b"abc")
    assert h.upstream.sent() == b"abc"
    await h.reply(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert h.received().startswith(b"HTTP/1.1 201 Created")


async def test_upgrade_becomes_a_tunnel() -> None:
    h = Harness()
    await h.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: k\r\n\r\nEARLY"
    )
    sent = h.upstream.sent()
    assert b"Upgrade: websocket" in sent and b"Connection: upgrade" in sent
    await h.reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\nFROM-UPSTREAM"
    )
    response = h.received()
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert response.endswith(b"\r\n\r\nFROM-UPSTREAM")
    assert h.upstream.sent() == b"EARLY"
    await h.send(b"\x81\x05hello")
    assert h.upstream.sent() == b"\x81\x05hello"
    await h.reply(b"\x81\x02ok")
    assert h.received() == b"\x81\x02ok"


async def upgraded() -> Harness:
    h = Harness()
    await h.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    await h.reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert h.received().startswith(b"HTTP/1.1 101 ")
    return h


async def test_a_tunnel_connection_never_goes_back_to_the_pool() -> None:
    h = await upgraded()
    assert h.upstream.idle == []
    assert h.upstream.active == 1  # counted until the tunnel closes, as nginx's peer conns
    assert h.server.stats.requests == {("GET", "101"): 1}  # once
    h.transport.close()
    await settle()
    assert h.upstream.active == 0 and h.upstream.idle == []


async def test_tunnel_keeps_back_pressure_both_ways() -> None:
    h = await upgraded()
    upstream = h.upstream.transports[-1]
    client_end, upstream_end = h.transport.protocol, upstream.protocol
    assert client_end is not None and upstream_end is not None
    client_end.pause_writing()  # a slow client: stop reading what it cannot take yet
    assert upstream.paused
    client_end.resume_writing()
    assert not upstream.paused
    upstream_end.pause_writing()  # a slow upstream: stop reading the client
    assert h.transport.paused
    upstream_end.resume_writing()
    assert not h.transport.paused


@pytest.mark.parametrize("split", [None, 20, -1, -2, -3])
async def test_101_without_connection_upgrade_is_tunnelled_as_nginx_does(split: int | None) -> None:
    h = Harness()
    await h.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    if split is None:
        await h.reply(head + b"\x81\x02hi")
    else:  # the head's end in a later read
        await h.reply(head[:split])
        await h.reply(head[split:] + b"\x81\x02hi")
    assert (
        h.received()
        == head.replace(b"\r\n\r\n", b"\r\nConnection: upgrade\r\n\r\n") + b"\x81\x02hi"
    )
    await h.send(b"\x81\x05hello")
    assert h.upstream.sent().endswith(b"\r\n\r\n\x81\x05hello")
    assert h.upstream.idle == [] and not h.transport.closed


@pytest.mark.parametrize(
    ("before", "data", "end"),
    [
        (b"", b"H\r\n\r\nxy", 5),
        (b"H\r\n\r", b"\nxy", 1),
        (b"H\r", b"\n\r\nxy", 3),
        (b"", b"\r\n\r\n", 4),
    ],
)
def test_head_end(before: bytes, data: bytes, end: int) -> None:
    assert head_end(before, data) == end


async def test_tunnel_closed_by_the_client_closes_the_upstream_side() -> None:
    h = await upgraded()
    upstream = h.upstream.transports[-1]
    h.transport.close()
    await settle()
    assert upstream.is_closing()
    await h.reply(b"late")  # already on its way when the client left: dropped, no error
    assert h.received() == b""


async def test_tunnel_closed_by_the_upstream_closes_the_client_side() -> None:
    h = await upgraded()
    await h.reply(b"bye")
    h.upstream.transports[-1].close()
    await settle()
    assert h.received() == b"bye" and h.transport.is_closing()


async def test_hsts_and_via_on_responses() -> None:
    h = Harness(ProxySettings(hsts=b"max-age=600", via=b"1.1 sidecar"))
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(OK)
    response = h.received()
    assert b"Strict-Transport-Security: max-age=600\r\n" in response
    assert b"Via: 1.1 sidecar\r\n" in response


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="no-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="two-hosts"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            id="cl-and-te",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
            400,
            id="bad-chunk-size",
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, id="obs-fold"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: a\r\nX" + b"y" * 9000 + b": 1\r\n\r\n",
            431,
            id="head-too-large",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
            413,
            id="declared-body-too-large",
        ),
        pytest.param(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405, id="connect"),
    ],
)
async def test_refused_requests_never_reach_the_upstream(request_bytes: bytes, status: int) -> None:
    h = Harness(ProxySettings(max_header_size=8192))
    await h.send(request_bytes)
    response = h.received()
    assert response.startswith(b"HTTP/1.1 %d " % status), response[:80]
    assert b"Connection: close" in response
    assert h.transport.closed
    assert h.upstream.conns == [] or all(
        not c.transport or not c.transport.written for c in h.upstream.conns
    )


async def test_chunked_body_over_the_limit_is_413() -> None:
    h = Harness(ProxySettings(max_body_size=10))
    await h.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    )
    assert h.received().startswith(b"HTTP/1.1 413 ")
    assert h.transport.closed


async def test_refusal_after_a_valid_pipelined_request_waits_its_turn() -> None:
    h = Harness()
    await h.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
    assert head_lines(h.upstream.sent())[0] == b"GET /1 HTTP/1.1"
    assert h.received() == b""  # the 400 waits for the first response
    await h.reply(OK)
    response = h.received()
    assert response.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 400 Bad Request" in response
    assert h.transport.closed


async def test_stale_pooled_connection_is_retried_for_get_not_for_post() -> None:
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(OK)
    h.received()
    h.upstream.sent()
    stale = h.upstream.conns[0]
    await h.send(b"GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
    assert h.upstream.sent(0).startswith(b"GET /again")
    stale.connection_lost(None)  # the upstream had closed it: no response byte came
    await settle()
    await h.reply(OK)  # answered on a new connection
    assert len(h.upstream.conns) == 2 and h.upstream.sent(1).startswith(b"GET /again")
    assert h.received().endswith(b"ok")

    h2 = Harness()
    await h2.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h2.reply(OK)
    h2.received()
    await h2.send(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nz")
    h2.upstream.conns[0].connection_lost(None)
    await settle()
    assert h2.received().startswith(b"HTTP/1.1 502 ")
    assert len(h2.upstream.conns) == 1  # never sent twice


async def test_upgrade_on_a_stale_pooled_connection_is_retried() -> None:
    """Nothing of a WebSocket handshake was processed on a connection the upstream had
    closed: it goes again on a new one, as a GET does."""
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(OK)
    h.received()
    h.upstream.sent()
    await h.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    h.upstream.conns[0].connection_lost(None)
    await settle()
    assert len(h.upstream.conns) == 2 and h.upstream.sent(1).startswith(b"GET /ws")
    await h.reply(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert h.received().startswith(b"HTTP/1.1 101 ")


async def test_unreachable_upstream_is_502() -> None:
    h = Harness(refuse=True)
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    response = h.received()
    assert response.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert h.server.stats.upstream_errors == {"connect": 1}
