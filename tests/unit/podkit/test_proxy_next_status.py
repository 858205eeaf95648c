"""Failover on status (nginx's proxy_next_upstream http_5xx) in the engine, byte for byte: a
listed status's response is held back and dropped unseen when the request can go on to the
next upstream, passed through as it is when it cannot; and the send timeout's deadline."""

from __future__ import annotations

from dataclasses import replace

from proxy_fakes import FakeTransport, FakeUpstream, settle

from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.head import RequestHead

LISTED = replace(ProxySettings(), next_upstream_statuses=frozenset({502, 503, 504}))
GET = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"


class Two:
    """A client connection in front of two upstreams, tried in turn (at most `tries`)."""

    def __init__(self, settings: ProxySettings, tries: int = 2) -> None:
        self.a, self.b = FakeUpstream(settings), FakeUpstream(settings)
        self.failures: list[tuple[str, str]] = []
        self.successes: list[tuple[str, int]] = []
        for name, up in (("a", self.a), ("b", self.b)):
            up.real.on_failure = lambda _u, kind, name=name: self.failures.append((name, kind))
            up.real.on_success = lambda _u, st, _s, name=name: self.successes.append((name, st))
        order = [self.a.real, self.b.real]

        def pick(_head: RequestHead, attempt: int) -> Upstream | None:
            return order[attempt] if attempt < min(tries, 2) else None

        self.server = ProxyServer(settings, pick)
        self.client = self.server.connection()
        self.transport = FakeTransport(self.client)
        self.client.connection_made(self.transport)  # type: ignore[arg-type]

    async def send(self, data: bytes) -> None:
        self.client.data_received(data)
        await settle()

    async def reply(self, upstream: FakeUpstream, data: bytes) -> None:
        protocol = upstream.transports[-1].protocol
        assert protocol is not None
        protocol.data_received(data)
        await settle()


async def test_listed_status_is_dropped_and_the_next_upstream_answers() -> None:
    t = Two(LISTED)
    await t.send(GET)
    assert t.a.sent().startswith(b"GET /a ")
    await t.reply(t.a, UNAVAILABLE)
    assert t.transport.take() == b""  # nothing of the 503 reached the client
    assert t.a.transports[-1].closed  # its connection dropped with the rest of the response
    assert t.b.sent().startswith(b"GET /a ")  # the same request, replayed
    await t.reply(t.b, OK)
    assert t.transport.take().startswith(b"HTTP/1.1 200 OK\r\n")
    assert t.failures == [("a", "http_503")]  # a passive failure of a
    assert t.successes == [("b", 200)]
    assert t.server.stats.upstream_errors == {"status": 1}


async def test_listed_status_with_no_upstream_left_is_passed_through() -> None:
    t = Two(LISTED)
    await t.send(GET)
    await t.reply(t.a, UNAVAILABLE)
    await t.reply(t.b, UNAVAILABLE)
    out = t.transport.take()
    assert out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and out.endswith(b"busy")
    # As nginx: the response it passes on is not a failed attempt (tries were used up).
    assert t.failures == [("a", "http_503")]
    assert t.successes == [("b", 503)]


async def test_tries_of_one_passes_the_first_response() -> None:
    t = Two(LISTED, tries=1)
    await t.send(GET)
    await t.reply(t.a, UNAVAILABLE)
    assert t.transport.take().startswith(b"HTTP/1.1 503 ")
    assert t.b.transports == [] and t.failures == []


async def test_unlisted_status_is_passed_through() -> None:
    t = Two(LISTED)
    await t.send(GET)
    await t.reply(t.a, b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")
    assert t.transport.take().startswith(b"HTTP/1.1 500 Oops\r\n")
    assert t.b.transports == []


async def test_nothing_listed_is_nothing_retried() -> None:
    t = Two(ProxySettings())
    await t.send(GET)
    await t.reply(t.a, UNAVAILABLE)
    assert t.transport.take().startswith(b"HTTP/1.1 503 ")
    assert t.b.transports == []


async def test_post_is_never_sent_twice_without_non_idempotent() -> None:
    t = Two(LISTED)
    await t.send(POST)
    assert t.a.sent().endswith(b"hello")
    await t.reply(t.a, UNAVAILABLE)
    assert t.transport.take().startswith(b"HTTP/1.1 503 ")
    assert t.b.transports == []  # never sent to b
    assert t.failures == []


async def test_post_goes_on_with_non_idempotent() -> None:
    t = Two(replace(LISTED, retry_non_idempotent=True))
    await t.send(POST)
    await t.reply(t.a, UNAVAILABLE)
    assert t.b.sent().endswith(b"hello")
    await t.reply(t.b, OK)
    assert t.transport.take().startswith(b"HTTP/1.1 200 OK\r\n")


async def test_no_retry_once_an_interim_response_went_out() -> None:
    t = Two(LISTED)
    await t.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    await t.reply(t.a, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + UNAVAILABLE)
    out = t.transport.take()
    assert out.startswith(b"HTTP/1.1 103 ") and b"HTTP/1.1 503 " in out
    assert t.b.transports == []


async def test_head_request_retried_on_status() -> None:
    t = Two(LISTED)
    await t.send(b"HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n")
    await t.reply(t.a, b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 10\r\n\r\n")
    assert t.b.sent().startswith(b"HEAD /a ")
    await t.reply(t.b, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert t.transport.take().startswith(b"HTTP/1.1 200 OK\r\n")


async def test_send_timeout_runs_while_the_upstream_reads_nothing() -> None:
    settings = replace(ProxySettings(), send_timeout=7.0, read_timeout=60.0)
    t = Two(settings)
    await t.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf")
    conn = t.a.conns[-1]
    assert conn.read_deadline == 0.0  # request still coming: no read timer
    conn.pause_writing()  # the upstream stopped reading
    assert conn.sending and conn.read_deadline > 0
    conn.resume_writing()
    assert not conn.sending and conn.read_deadline == 0.0
    conn.pause_writing()
    conn.read_timed_out()
    await settle()
    out = t.transport.take()
    assert out.startswith(b"HTTP/1.1 504 ")
