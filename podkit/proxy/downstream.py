"""The client side: one asyncio Protocol per client connection, parsing requests with
httptools and answering them in order (pipelined requests queue behind the first)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import monotonic
from typing import cast

import httptools

from podkit.proxy import responses
from podkit.proxy.attempt import Attempt, ClientSide
from podkit.proxy.checks import refusal
from podkit.proxy.context import Context
from podkit.proxy.exchange import Exchange
from podkit.proxy.flow import PEER_FULL, PIPELINED, REFUSED, UPGRADE, Flow
from podkit.proxy.forwarding import Forwarding
from podkit.proxy.head import RequestHead
from podkit.proxy.headers import MISS, H, Miss, classify, origin_form, valid_host

log = logging.getLogger(__name__)

# What the connection is waiting for, when its deadline runs out.
NO_WAIT, HEAD_WAIT, BODY_WAIT, IDLE_WAIT = range(4)


class Listener:
    """What a client connection calls back: the server that accepted it. A base class rather
    than a typing.Protocol, so that the compiled build dispatches these calls natively."""

    __slots__ = ()

    def opened(self, conn: ClientConnection) -> None:
        raise NotImplementedError

    def closed(self, conn: ClientConnection) -> None:
        raise NotImplementedError


class ClientConnection(ClientSide):
    """The asyncio protocol of one client connection."""

    # Slots: a thousand idle connections should cost little more than their sockets.
    __slots__ = (
        "_valid_host",
        "closed",
        "closing",
        "ctx",
        "current",
        "deadline",
        "deadline_kind",
        "error",
        "flow",
        "forwarding",
        "head_size",
        "http11",
        "in_head",
        "listener",
        "parser",
        "parsing",
        "peer",
        "queue",
        "refused",
        "settings",
        "subject",
        "transport",
        "trusted",
        "tunnelled",
        "wbuf",
    )

    def __init__(self, ctx: Context, listener: Listener) -> None:
        # -- per connection ------------------------------------------------------------------
        self.ctx = ctx
        self.listener = listener
        self.settings = ctx.settings
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.trusted = False
        self.subject: bytes | None = None  # verified client certificate subject (mTLS)
        self.queue: deque[Exchange] = deque()  # queue[0] is being answered
        self.wbuf: list[bytes] = []
        self.closing = False  # close once the current response is written
        self.closed = False
        self.parsing = False  # inside feed_data: nothing goes upstream until it returns
        self.http11 = True
        self.tunnelled = False  # after a 101: a tunnel end has taken the transport over
        self.flow = Flow()
        self.deadline = 0.0  # when the current wait (head, body, idle) runs out; 0: none
        self.deadline_kind = NO_WAIT
        # -- per request being parsed --------------------------------------------------------
        self.current: Exchange | None = None
        self.in_head = False
        self.head_size = 0
        self.error: tuple[bytes, int, str] | None = None  # a refusal still to be sent
        self.refused = False  # a request was refused: read nothing more
        self.forwarding = Forwarding()
        self._valid_host: bytes | None = None

    # -- connection events ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.settings.write_buffer_high)
        self.flow.transport = self.transport
        peer = self.transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.trusted = self.settings.trusts(self.peer)
        subject_of = self.ctx.client_subject
        self.subject = subject_of(self.transport) if subject_of is not None else None
        self.listener.opened(self)
        self._deadline(self.settings.header_timeout, HEAD_WAIT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.cancel_timer()
        for exchange in self.queue:
            exchange.abandon()
        self.queue.clear()
        self.listener.closed(self)
        self.transport = None

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def data_received(self, data: bytes) -> None:
        self.ctx.stats.bytes_in += len(data)
        if self.refused:
            return  # the connection is being closed after a refused request
        self.parsing = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_requested(data, upgrade.args[0] if upgrade.args else len(data))
        except httptools.HttpParserError as exc:
            if self.error is None:
                self.ctx.stats.reject("malformed")
                log.warning("%s: malformed request: %s", self.peer, exc)
                self._refuse(responses.BAD_REQUEST, 400, "malformed")
        self.parsing = False
        if self.error is not None and not self.refused:
            self._refuse_now()
        elif self.in_head and not self.refused:
            self.head_size += len(data)
            if self.head_size > self.settings.max_header_size:
                self._refuse(responses.HEADERS_TOO_LARGE, 431, "header_too_large")
                self._refuse_now()
        if self.queue:
            self.queue[0].push()
        self.flush()

    def _upgrade_requested(self, data: bytes, offset: int) -> None:
        exchange = self.queue[-1] if self.queue else None
        if exchange is None or self.error is not None:
            return
        exchange.upgrade_tail = data[offset:]
        self.pause_reading(UPGRADE)

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = Exchange(self.ctx, self, RequestHead(self.peer))
        self.in_head = True
        self.head_size = 0
        if not self.queue:
            self._deadline(self.settings.header_timeout, HEAD_WAIT)

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.head.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.current
        assert exchange is not None
        if not self.in_head:
            return  # a chunked body's trailer fields: dropped, as nginx drops them
        self.head_size += len(name) + len(value) + 4
        kind = self.ctx.request_table.get(name, MISS)
        if isinstance(kind, Miss):
            kind = classify(self.ctx.request_table, name)
        head = exchange.head
        if kind is None:
            head.headers.append((name, value))
        elif kind is H.HOST:
            head.hosts += 1
            head.host = value
            head.headers.append((name, value))
        elif kind is H.CONTENT_LENGTH:
            head.content_length = int(value)  # llhttp has checked it is digits
            head.headers.append((name, value))
        elif kind is H.EXPECT:
            head.headers.append((name, value))
        elif kind is not H.HOP and kind is not H.STRIP and not self.forwarding.take(kind, value):
            head.headers.append((name, value))
        # H.HOP and H.STRIP: dropped

    def on_headers_complete(self) -> None:
        exchange = self.current
        assert exchange is not None
        self.in_head = False
        if self.error is not None:  # a request after a refused one: never forwarded
            self.forwarding.reset()
            return
        parser = self.parser
        head = exchange.head
        head.method = parser.get_method()
        head.keep_alive = exchange.keep_alive = parser.should_keep_alive()
        version = parser.get_http_version()
        head.http11 = version == "1.1"
        settings = self.settings
        host = head.host
        host_ok = host is None or host == self._valid_host or valid_host(host)
        te = bool(self.forwarding.te)
        refused = refusal(head, version, te, host_ok, self.head_size, settings)
        if refused is not None:
            self._refuse(*refused)
        if self.error is not None:
            self.forwarding.reset()
            return
        self._valid_host = host  # the next request here likely repeats it
        if not head.url.startswith(b"/") and head.url != b"*":
            # Absolute-form (GET http://host/path): on in origin-form, with the target's
            # authority as Host, as RFC 9112 §3.2.2 asks of a proxy and nginx does, so the
            # upstream and X-Forwarded-Host cannot disagree on the host.
            head.host, head.url = origin_form(head.url)
            table = self.ctx.request_table
            head.headers = [
                (n, head.host if classify(table, n) is H.HOST else v) for n, v in head.headers
            ]
        forwarding = self.forwarding
        headers = forwarding.headers_to_pass(head, self.ctx.request_table, parser.should_upgrade())
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname") if head.host is None else None
        exchange.forward(
            forwarding.request_head(head, headers, settings, self.trusted, self.subject, sockname)
        )
        forwarding.reset()
        self.cancel_timer()
        self.queue.append(exchange)
        if len(self.queue) == 1:
            exchange.start()
        else:
            self.pause_reading(PIPELINED)

    def on_body(self, body: bytes) -> None:
        exchange = self.current
        if exchange is None or self.error is not None or self.refused or exchange not in self.queue:
            return
        exchange.body_size += len(body)
        limit = self.settings.max_body_size
        if limit and exchange.body_size > limit:
            self.ctx.stats.reject("body_too_large")
            self.refused = True
            self.flow.pause(REFUSED)
            exchange.fail(responses.TOO_LARGE, 413)  # aborts instead if a response started
            return
        if exchange.head.chunked:
            exchange.forward(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            exchange.forward(body)
        if not exchange.request_complete and exchange is self.queue[0]:
            self._deadline(self.settings.body_timeout, BODY_WAIT)

    def on_message_complete(self) -> None:
        exchange = self.current
        if exchange is None or self.error is not None or self.refused or exchange not in self.queue:
            return
        if exchange.head.chunked:
            exchange.forward(b"0\r\n\r\n")
        exchange.request_complete = True
        self.current = None
        if self.deadline and exchange is self.queue[0]:
            self.cancel_timer()

    # -- refusing a request --------------------------------------------------------------------
    def _refuse(self, canned: bytes, status: int, reason: str) -> None:
        if self.error is None:
            self.error = (canned, status, reason)
            if reason != "malformed":
                self.ctx.stats.reject(reason)

    def _refuse_now(self) -> None:
        """Queue the refusal behind any exchange still being answered, then close."""
        assert self.error is not None
        canned, status, _ = self.error
        self.refused = True
        exchange = (
            self.current
            if self.current is not None
            else Exchange(self.ctx, self, RequestHead(self.peer))
        )
        if exchange in self.queue:  # refused mid-body: its upstream part is dropped
            self.flow.pause(REFUSED)
            exchange.fail(canned, status)
            return
        exchange.out.clear()
        exchange.canned, exchange.canned_status = canned, status
        self.current = None
        self.queue.append(exchange)
        self.flow.pause(REFUSED)
        if len(self.queue) == 1:
            exchange.start()

    # -- timers --------------------------------------------------------------------------------
    # Deadlines, not timers: a handle per request costs more than the request's whole budget.
    # ProxyServer's sweeper calls check() a few times a second.
    def _deadline(self, seconds: float, kind: int) -> None:
        self.deadline = monotonic() + seconds
        self.deadline_kind = kind

    def cancel_timer(self) -> None:
        self.deadline = 0.0
        self.deadline_kind = NO_WAIT

    def check(self, now: float) -> None:
        if self.deadline and now >= self.deadline:
            kind = self.deadline_kind
            self.cancel_timer()
            if kind == HEAD_WAIT:
                self._header_timeout()
            elif kind == BODY_WAIT:
                self._body_timeout()
            else:
                self.close()
        if self.queue:
            conn = self.queue[0].conn
            if conn is not None and conn.read_deadline and now >= conn.read_deadline:
                conn.read_timed_out()

    def _header_timeout(self) -> None:
        if self.in_head or self.queue:
            log.info(
                "%s: request head not received in %.0fs", self.peer, self.settings.header_timeout
            )
            self._refuse(responses.REQUEST_TIMEOUT, 408, "header_timeout")
            self._refuse_now()
            self.flush()
        else:
            self.close()  # an idle connection that never sent a byte

    def _body_timeout(self) -> None:
        exchange = self.queue[0] if self.queue else None
        self.ctx.stats.reject("body_timeout")
        if exchange is not None and not exchange.response_started:
            exchange.fail(responses.REQUEST_TIMEOUT, 408)
        else:
            self.abort()

    # -- writing to the client -----------------------------------------------------------------
    def buffer(self, data: bytes) -> None:
        self.wbuf.append(data)

    def flush(self) -> None:
        if not self.wbuf or self.transport is None:
            return
        data = b"".join(self.wbuf) if len(self.wbuf) > 1 else self.wbuf[0]
        self.wbuf.clear()
        self.ctx.stats.bytes_out += len(data)
        self.transport.write(data)

    def answering(self, exchange: Attempt) -> bool:
        return bool(self.queue) and self.queue[0] is exchange

    def finished(self, exchange: Attempt) -> None:
        if self.queue and self.queue[0] is exchange:
            self.queue.popleft()
        if exchange.head.upgrade and exchange.status == 101:
            return  # the connection is a tunnel now
        if self.closing or not exchange.keep_alive or self.ctx.draining:
            self.closing = True
            self.flush()
            self.close()
            return
        self.resume_reading(PIPELINED | UPGRADE)
        if self.queue:
            self.queue[0].start()
        elif self.current is None:
            self._deadline(self.settings.keepalive_timeout, IDLE_WAIT)

    # -- flow control --------------------------------------------------------------------------
    def pause_reading(self, reason: int) -> None:
        if self.flow.pause(reason) and self.deadline_kind == BODY_WAIT:
            self.cancel_timer()  # waiting on the upstream is not the client's fault

    def resume_reading(self, reason: int) -> None:
        if self.flow.resume(reason):
            head = self.queue[0] if self.queue else None
            if head is not None and not head.request_complete and head.body_size:
                self._deadline(self.settings.body_timeout, BODY_WAIT)

    def start_tunnel(self) -> asyncio.Transport | None:
        self.tunnelled = True
        self.cancel_timer()
        return self.transport

    # The client's write buffer holds back the upstream connection answering it.
    def pause_writing(self) -> None:
        conn = self.queue[0].conn if self.queue else None
        if conn is not None:
            conn.flow.pause(PEER_FULL)

    def resume_writing(self) -> None:
        conn = self.queue[0].conn if self.queue else None
        if conn is not None:
            conn.flow.resume(PEER_FULL)

    # -- closing -------------------------------------------------------------------------------
    def idle(self) -> bool:
        return not self.queue and not self.in_head and not self.tunnelled

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
