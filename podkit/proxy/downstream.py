"""The client side: one asyncio Protocol per client connection. Its reading side
(podkit.proxy.intake) turns bytes into requests; here the connection around it: answers
written in order (pipelined requests queue behind the first), flow control, deadlines,
closing."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic
from typing import cast

from podkit.proxy import responses
from podkit.proxy.attempt import Attempt
from podkit.proxy.context import Context
from podkit.proxy.flow import PEER_FULL, PIPELINED, UPGRADE
from podkit.proxy.intake import BODY_WAIT, HEAD_WAIT, IDLE_WAIT, NO_WAIT, RequestIntake

log = logging.getLogger(__name__)


class Listener:
    """What a client connection calls back: the server that accepted it. A base class rather
    than a typing.Protocol, so that the compiled build dispatches these calls natively."""

    __slots__ = ()

    def opened(self, conn: ClientConnection) -> None:
        raise NotImplementedError

    def closed(self, conn: ClientConnection) -> None:
        raise NotImplementedError


class ClientConnection(RequestIntake):
    """The asyncio protocol of one client connection."""

    # Slots: a thousand idle connections should cost little more than their sockets.
    __slots__ = (
        "closed",
        "closing",
        "deadline",
        "deadline_kind",
        "listener",
        "source",
        "tunnelled",
        "wbuf",
    )

    def __init__(self, ctx: Context, listener: Listener, source: str = "") -> None:
        super().__init__(ctx)
        self.listener = listener
        self.source = source  # the client's address from a PROXY protocol header, if any
        self.wbuf: list[bytes] = []
        self.closing = False  # close once the current response is written
        self.closed = False
        self.tunnelled = False  # after a 101: a tunnel end has taken the transport over
        self.deadline = 0.0  # when the current wait (head, body, idle) runs out; 0: none
        self.deadline_kind = NO_WAIT

    # -- connection events ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.settings.write_buffer_high)
        self.flow.transport = self.transport
        if self.source:
            self.peer = self.source
        else:
            peer = self.transport.get_extra_info("peername")
            self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.trusted = self.settings.trusts(self.peer)
        identity_of = self.ctx.client_identity
        if identity_of is not None:
            self.identity = identity_of(self.transport)
        self.listener.opened(self)
        self._deadline(self.settings.header_timeout, HEAD_WAIT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.cancel_timer()
        for exchange in self.queue:
            exchange.abandon()
        self.queue.clear()
        self.listener.closed(self)
        # Let go of the transport everywhere: the parser's callbacks make this object part of
        # a reference cycle, and the TLS layer behind the transport (OpenSSL's state and a
        # 256 KiB read buffer) would otherwise wait for the cyclic collector's next full pass.
        self.transport = self.flow.transport = None

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def data_received(self, data: bytes) -> None:
        self.ctx.stats.bytes_in += len(data)
        if self.refused:
            return  # the connection is being closed after a refused request
        self.feed(data)
        if self.queue:
            self.queue[0].push()
        self.flush()

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
