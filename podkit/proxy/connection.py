"""One connection to an upstream: writes a request, reads its response with httptools and
hands it to a `ResponseSink` (the exchange it serves), then goes back to its pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import monotonic
from typing import cast

import httptools

from podkit.proxy.flow import Flow
from podkit.proxy.settings import ProxySettings

log = logging.getLogger(__name__)


class UpstreamError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # connect | timeout | reset | invalid_response


class Pool:
    """What a connection calls back: the upstream whose pool it belongs to. A base class
    rather than a typing.Protocol, so that the compiled build dispatches these calls
    natively."""

    __slots__ = ()
    url: str
    settings: ProxySettings

    def release(self, conn: UpstreamConnection) -> None:
        """The response is read whole: keep the connection for the next request, or close."""
        raise NotImplementedError

    def forget(self, conn: UpstreamConnection) -> None:
        """The connection closed: it is no longer in the pool."""
        raise NotImplementedError


def head_end(before: bytes, data: bytes) -> int:
    """Where in `data` the bytes after a head ending in it begin; the head's blank line may
    have started in `before`, the previous read."""
    carried = before[-3:]
    at = (carried + data).find(b"\r\n\r\n")
    return max(at + 4 - len(carried), 0) if at >= 0 else len(data)


class ResponseSink:
    """What an upstream connection calls back: the exchange it serves. A base class rather
    than a typing.Protocol, so that the compiled build dispatches these calls natively."""

    __slots__ = ()
    close_delimited: bool  # the response ends when the upstream closes the connection
    request_complete: bool  # the whole request was sent: the connection may be reused

    def interim_response(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        raise NotImplementedError

    def response_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        raise NotImplementedError

    def response_body(self, data: bytes) -> None:
        raise NotImplementedError

    def response_done(self) -> None:
        raise NotImplementedError

    def upstream_failed(self, conn: UpstreamConnection, error: UpstreamError) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def upstream_writable(self, writable: bool) -> None:
        """The connection's write buffer passed its high-water mark (False) or drained."""
        raise NotImplementedError

    def tunnel_opened(self) -> None:
        raise NotImplementedError

    def tunnel_closed(self) -> None:
        raise NotImplementedError


class UpstreamConnection(asyncio.Protocol):
    """One connection to an upstream; serves one exchange at a time."""

    __slots__ = (
        "_before",
        "_headers",
        "_interim",
        "_reason",
        "exchange",
        "flow",
        "head_only",
        "idle_since",
        "parser",
        "read_deadline",
        "received",
        "reused",
        "sending",
        "transport",
        "tunnel",
        "upstream",
    )

    def __init__(self, upstream: Pool) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.exchange: ResponseSink | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self.received = False  # any byte of the current response
        self.head_only = False  # the request was HEAD: the response has no body
        self.tunnel: Callable[[bytes], None] | None = None  # after a 101: where bytes go
        self._headers: list[tuple[bytes, bytes]] = []
        self._before = b""  # the response's previous read: its head may end across two
        self._reason = b""
        self.idle_since = 0.0  # in the pool since; 0: in use
        self.read_deadline = 0.0  # a response byte is due by then; 0: not waiting
        self.sending = False  # the deadline is the send timeout's: the upstream reads nothing
        self.flow = Flow()  # paused while the client's write buffer is full
        self._interim = False  # a 1xx is being read: the final response follows

    # -- connection events ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.upstream.settings.write_buffer_high)
        self.flow.transport = self.transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.read_deadline = 0.0
        self.upstream.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            if self.tunnel is not None:
                exchange.tunnel_closed()
            else:
                self._on_close(exchange)
        self.transport = self.flow.transport = None  # not kept alive by the parser's cycle

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def _on_close(self, exchange: ResponseSink) -> None:
        if exchange.close_delimited and self.received:
            exchange.response_done()
            exchange.flush()
            return
        kind = "reset"
        exchange.upstream_failed(self, UpstreamError(kind, "upstream closed the connection"))

    # The send timeout (nginx's proxy_send_timeout) runs while the upstream reads nothing of
    # the request: from a full write buffer until it drains.
    def pause_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            self.sending = True
            self.read_deadline = monotonic() + self.upstream.settings.send_timeout
            exchange.upstream_writable(False)

    def resume_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            self.sending = False
            if exchange.request_complete:
                self.start_read_timer()
            else:
                self.read_deadline = 0.0
            exchange.upstream_writable(True)

    # -- use by exchanges ----------------------------------------------------------------------
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def bind(self, exchange: ResponseSink, head_only: bool) -> None:
        self.exchange = exchange
        self.sending = False
        self._interim = False
        self.received = False
        self._before = b""
        self.head_only = head_only
        self._headers = []

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def start_read_timer(self) -> None:
        if not self.sending:
            self.read_deadline = monotonic() + self.upstream.settings.read_timeout

    def read_timed_out(self) -> None:
        self.read_deadline = 0.0
        exchange, self.exchange = self.exchange, None
        what = "send" if self.sending else "read"
        if exchange is not None:
            exchange.upstream_failed(self, UpstreamError("timeout", f"upstream {what} timed out"))
        self.close()

    def discard(self) -> None:
        """The exchange has moved on (a status it retries elsewhere): the rest of this
        response is dropped with the connection, as nginx drops it."""
        self.exchange = None
        self.read_deadline = 0.0
        self.close()

    def start_idle(self) -> None:
        self.exchange = None
        self.reused = True
        self.idle_since = monotonic()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- response parsing ----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: nothing may follow, drop it
            self.close()
            return
        self.received = True
        if self.read_deadline:
            self.start_read_timer()
        before, self._before = self._before, data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            exchange.flush()
            self._to_tunnel(data[upgrade.args[0] :] if upgrade.args else b"")
            return
        except httptools.HttpParserError as exc:
            if self._tunnelling():
                # A 101 without `Connection: upgrade`: llhttp stops after its head without
                # calling it an upgrade. nginx tunnels it all the same (the client asked).
                exchange.flush()
                self._to_tunnel(data[head_end(before, data) :])
                return
            self.exchange = None
            log.warning("invalid response from %s: %s", self.upstream.url, exc)
            exchange.upstream_failed(self, UpstreamError("invalid_response", str(exc)))
            self.abort()
        # One write to the client per read from the upstream, the response's end included.
        exchange.flush()

    # The parser's callbacks may open the tunnel: these read `tunnel` afresh, where a type
    # checker (and so mypyc) would take it still to be None from the check above.
    def _tunnelling(self) -> bool:
        return self.tunnel is not None

    def _bound(self) -> bool:
        return self.exchange is not None  # False once the exchange discarded this response

    def _to_tunnel(self, data: bytes) -> None:
        if data and self.tunnel is not None:
            self.tunnel(data)

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.exchange is not None
        status = self.parser.get_status_code()
        headers, reason = self._headers, self._reason
        self._headers, self._reason = [], b""
        if 100 <= status < 200 and status != 101:
            self._interim = True
            self.exchange.interim_response(status, reason, headers)
            return
        upgrade = status == 101
        self.exchange.response_head(
            status, reason, headers, self.parser.should_keep_alive(), upgrade
        )
        if self.head_only and not upgrade and self._bound():
            # llhttp cannot be told the request was HEAD: the response ends with its head,
            # and a fresh parser reads the next one.
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self.exchange is None or self.head_only:
            return
        if self._interim:  # the end of a 1xx: the final response follows
            self._interim = False
            return
        self._finish()

    def _finish(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        self.read_deadline = 0.0
        if self.tunnel is not None:
            exchange.tunnel_opened()  # and the exchange stays bound: its close ends the tunnel
            return
        keep_alive = self.parser.should_keep_alive() and exchange.request_complete
        if self.head_only:
            self.parser = httptools.HttpResponseParser(self)
        self.exchange = None
        exchange.response_done()
        if keep_alive:
            self.upstream.release(self)
        else:
            self.close()
