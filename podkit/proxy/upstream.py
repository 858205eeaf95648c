"""Upstreams: an address, its pool of idle keep-alive connections, and the protocol that
reads one response at a time from a connection and hands it to a `ResponseSink`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import cast
from urllib.parse import urlsplit

import httptools

from podkit.proxy.settings import ProxySettings

log = logging.getLogger(__name__)


class UpstreamError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # connect | timeout | reset | invalid_response


def parse_upstream_url(url: str) -> tuple[str, int, str]:
    """(host, port, unix path) from http://host:port or unix:/path."""
    if url.startswith("unix:"):
        path = url[5:]
        path = path[2:] if path.startswith("//") else path
        if not path.startswith("/"):
            raise ValueError(f"expected unix:/absolute/path, got {url!r}")
        return "", 0, path
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected http://host:port or unix:/path, got {url!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an upstream is an address, without a path: {url!r}")
    return parts.hostname, parts.port or 80, ""


Dial = Callable[["Upstream"], Awaitable["UpstreamConnection"]]


async def dial(upstream: Upstream) -> UpstreamConnection:
    """A new connection to `upstream` (TCP or unix socket)."""
    loop = asyncio.get_running_loop()
    if upstream.path:
        _, conn = await loop.create_unix_connection(
            lambda: UpstreamConnection(upstream), upstream.path
        )
    else:
        _, conn = await loop.create_connection(
            lambda: UpstreamConnection(upstream), upstream.host, upstream.port
        )
    return conn


class Upstream:
    """One upstream address and its idle connections."""

    def __init__(self, url: str, settings: ProxySettings, dialer: Dial = dial) -> None:
        self.url = url
        self.host, self.port, self.path = parse_upstream_url(url)
        self.settings = settings
        self.dialer = dialer  # how connections are opened (tests answer by hand)
        self.idle: list[UpstreamConnection] = []
        self.active = 0  # exchanges in flight (least_conn counts these)
        self._sweep: asyncio.TimerHandle | None = None
        # Hooks for a balancer's passive health checks; the sidecar leaves them as they are.
        self.on_failure: Callable[[Upstream, str], None] | None = None
        self.on_success: Callable[[Upstream, int, float], None] | None = None

    def __repr__(self) -> str:
        return f"Upstream({self.url})"

    def take_idle(self) -> UpstreamConnection | None:
        while self.idle:
            conn = self.idle.pop()  # the most recently used: the least likely to be stale
            if conn.usable():
                conn.idle_since = 0.0
                return conn
        return None

    def release(self, conn: UpstreamConnection) -> None:
        if len(self.idle) < self.settings.pool_size and conn.usable():
            self.idle.append(conn)
            conn.start_idle()
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(
                    self.settings.upstream_idle_timeout, self.sweep
                )
        else:
            conn.close()

    def sweep(self) -> None:
        """Close pooled connections idle for longer than upstream_idle_timeout; one timer per
        upstream while it pools any, not one per connection."""
        self._sweep = None
        limit = monotonic() - self.settings.upstream_idle_timeout
        for conn in [c for c in self.idle if c.idle_since < limit]:
            self.idle.remove(conn)
            conn.close()
        if self.idle:
            self._sweep = asyncio.get_running_loop().call_later(
                max(self.idle[0].idle_since - limit, 0.05), self.sweep
            )

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    async def connect(self) -> UpstreamConnection:
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                return await self.dialer(self)
        except TimeoutError as exc:
            raise UpstreamError("connect", f"connect to {self.url} timed out") from exc
        except OSError as exc:
            raise UpstreamError("connect", f"connect to {self.url} failed: {exc}") from exc

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in self.idle:
            conn.close()
        self.idle.clear()


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
        "_paused_peer",
        "_reason",
        "exchange",
        "head_only",
        "idle_since",
        "parser",
        "read_deadline",
        "received",
        "reused",
        "transport",
        "tunnel",
        "upstream",
    )

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.exchange: ResponseSink | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self.received = False  # any byte of the current response
        self.head_only = False  # the request was HEAD: the response has no body
        self.tunnel: Callable[[bytes], None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._before = b""  # the response's previous read: its head may end across two
        self._reason = b""
        self.idle_since = 0.0  # in the pool since; 0: in use
        self.read_deadline = 0.0  # a response byte is due by then; 0: not waiting
        self._paused_peer = False
        self._interim = False  # a 1xx is being read: the final response follows

    # -- connection events ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.upstream.settings.write_buffer_high)

    def connection_lost(self, exc: Exception | None) -> None:
        self.read_deadline = 0.0
        self.upstream.forget(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            if self.tunnel is not None:
                exchange.tunnel_closed()
            else:
                self._on_close(exchange)
        self.transport = None

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def _on_close(self, exchange: ResponseSink) -> None:
        if exchange.close_delimited and self.received:
            exchange.response_done()
            exchange.flush()
            return
        kind = "reset"
        exchange.upstream_failed(self, UpstreamError(kind, "upstream closed the connection"))

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_writable(False)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_writable(True)

    # -- use by exchanges ----------------------------------------------------------------------
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def bind(self, exchange: ResponseSink, head_only: bool) -> None:
        self.exchange = exchange
        self._interim = False
        self.received = False
        self._before = b""
        self.head_only = head_only
        self._headers = []

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def start_read_timer(self) -> None:
        self.read_deadline = monotonic() + self.upstream.settings.read_timeout

    def read_timed_out(self) -> None:
        self.read_deadline = 0.0
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_failed(self, UpstreamError("timeout", "upstream read timed out"))
        self.close()

    def pause_reading(self) -> None:
        if self.transport is not None and not self._paused_peer:
            self._paused_peer = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self._paused_peer:
            self._paused_peer = False
            self.transport.resume_reading()

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
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel(data)
            return
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
        if self.head_only and not upgrade:
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
