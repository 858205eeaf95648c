"""One request and its response as they pass through the proxy.

The client connection parses the request and hands the exchange its pieces; the exchange
forwards them to an upstream connection (taken from the pool or opened), and writes the
response back through the client side. Retries, canned errors and the switch to a byte
tunnel after `101 Switching Protocols` are decided here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from podkit.proxy import responses
from podkit.proxy.context import Context
from podkit.proxy.head import RequestHead
from podkit.proxy.headers import MISS, H, Miss, classify
from podkit.proxy.upstream import ResponseSink, Upstream, UpstreamConnection, UpstreamError

log = logging.getLogger(__name__)

REPLAY_LIMIT = 64 * 1024  # requests up to this size are kept for a retry on a fresh connection
NO_BODY_STATUS = frozenset({204, 304})


class ClientSide(asyncio.Protocol):
    """What an exchange calls back: the client connection it answers. A base class rather
    than a typing.Protocol, so that the compiled build dispatches these calls natively."""

    __slots__ = ()
    parsing: bool  # inside a parse call: nothing goes upstream until it returns
    closed: bool

    def buffer(self, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def answering(self, exchange: Exchange) -> bool:
        """Whether `exchange` is the one being answered (not a pipelined one behind it)."""
        raise NotImplementedError

    def finished(self, exchange: Exchange) -> None:
        """The exchange is over; its keep_alive says whether the connection may go on."""
        raise NotImplementedError

    def pause_reading(self, reason: str) -> None:
        raise NotImplementedError

    def resume_reading(self, reason: str) -> None:
        raise NotImplementedError

    def start_tunnel(self, conn: UpstreamConnection) -> asyncio.Transport | None:
        """From now on the client's bytes go to `conn` as they come; returns the client's
        transport for the other direction."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class Exchange(ResponseSink):
    """A request/response pair on one client connection."""

    __slots__ = (
        "attempt",
        "body_size",
        "canned",
        "canned_status",
        "chunked_out",
        "client",
        "close_delimited",
        "conn",
        "connecting",
        "counted",
        "ctx",
        "finished",
        "fresh",
        "head",
        "keep_alive",
        "last_error",
        "out",
        "out_size",
        "replay",
        "replay_size",
        "request_complete",
        "response_started",
        "status",
        "upgrade_tail",
        "upstream",
    )

    def __init__(self, ctx: Context, client: ClientSide, head: RequestHead) -> None:
        self.ctx = ctx
        self.client = client
        self.head = head
        # -- the request, as it arrives ------------------------------------------------------
        self.body_size = 0
        self.request_complete = False
        self.upgrade_tail = b""
        self.keep_alive = True  # the client connection may carry another request after this
        # -- towards the upstream ------------------------------------------------------------
        self.out: list[bytes] = []  # not yet written upstream
        self.out_size = 0
        self.replay: list[bytes] | None = []  # everything sent so far, for a retry
        self.replay_size = 0
        self.upstream: Upstream | None = None
        self.conn: UpstreamConnection | None = None
        self.connecting: asyncio.Future[None] | None = None
        self.attempt = 0
        self.counted: Upstream | None = None  # whose in-flight count holds this exchange
        self.last_error = ""  # the kind of the last failed attempt
        self.fresh = False  # retry on a new connection to the same upstream
        self.canned: bytes | None = None  # answered by the proxy itself
        self.canned_status = 0
        # -- the response ---------------------------------------------------------------------
        self.status = 0
        self.response_started = False
        self.chunked_out = False
        self.close_delimited = False
        self.finished = False

    # -- request side --------------------------------------------------------------------------
    def forward(self, data: bytes) -> None:
        """Queue bytes for the upstream; `push` writes them once the parse call is over."""
        self.out.append(data)
        self.out_size += len(data)
        if self.replay is not None:
            self.replay_size += len(data)
            if self.replay_size > REPLAY_LIMIT:
                self.replay = None
            else:
                self.replay.append(data)

    def push(self) -> None:
        if self.client.parsing:
            return  # the parse call may still find this request malformed
        if self.conn is not None and self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            self.out_size = 0
            self.conn.write(data)
            if self.request_complete:
                self.conn.start_read_timer()
        elif self.out_size > self.ctx.settings.write_buffer_high:
            self.client.pause_reading("connecting")

    def start(self) -> None:
        """This exchange is now the one the client connection answers."""
        self.head.started = time.monotonic()
        if self.canned is not None:
            self.client.buffer(self.canned)
            self.status = self.canned_status
            self.keep_alive = False
            self._finish()
            return
        self._next_upstream()

    def _next_upstream(self) -> None:
        if self.fresh:
            upstream: Upstream | None = self.upstream
        else:
            upstream = self.ctx.pick(self.head, self.attempt)
        if upstream is None:
            if self.last_error:  # nothing left to try: answer for the last failure
                self._answer_failure(self.last_error)
            else:
                self.fail(responses.NO_UPSTREAM, 502)
            return
        self.upstream = upstream
        self.count(upstream)
        conn = None if self.fresh else upstream.take_idle()
        self.fresh = False
        if conn is not None:
            self._attach(conn)
        else:
            self.connecting = asyncio.ensure_future(self._connect(upstream))

    async def _connect(self, upstream: Upstream) -> None:
        try:
            conn = await upstream.connect()
        except UpstreamError as error:
            self.connecting = None
            self._failed_attempt(upstream, error)
            return
        self.connecting = None
        if self.finished or self.client.closed:
            upstream.release(conn)
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.bind(self, head_only=self.head.method == b"HEAD")
        self.client.resume_reading("connecting")
        self.push()

    def abandon(self) -> None:
        """The client is gone: drop the attempt under way."""
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        if self.conn is not None:
            self.conn.abort()  # a half-sent request: the connection is not reusable
            self.conn = None
        self.uncount()

    # -- upstream trouble ----------------------------------------------------------------------
    def upstream_failed(self, conn: UpstreamConnection, error: UpstreamError) -> None:
        if conn is not self.conn or self.finished:
            return
        self.conn = None
        assert self.upstream is not None
        self.uncount()
        if self.response_started:
            # Mid-response: the client has part of it; all that is left is to cut it off.
            self.ctx.stats.upstream_error(error.kind)
            log.warning(
                "%s: %s after the response started; closing the client connection",
                self.upstream.url,
                error,
            )
            self.client.abort()
            self._finish(record=False)
            return
        if (
            conn.reused
            and error.kind == "reset"
            and self.replay is not None
            and self.ctx.retry_allowed(self.head.method)
        ):
            # A kept connection the upstream had closed: not the upstream's failure, and the
            # request is known not to have been processed. Again, on a new connection.
            self.fresh = True
            self._replay()
            self._next_upstream()
            return
        self._failed_attempt(self.upstream, error)

    def _failed_attempt(self, upstream: Upstream, error: UpstreamError) -> None:
        self.uncount()
        self.ctx.stats.upstream_error(error.kind)
        if upstream.on_failure is not None:
            upstream.on_failure(upstream, error.kind)
        log.warning("upstream %s: %s", upstream.url, error)
        self.last_error = error.kind
        # A failed connect sent nothing: any method may go to the next upstream (as nginx,
        # which refuses non-idempotent retries only once the request was sent).
        if self.replay is not None and (
            error.kind == "connect" or self.ctx.retry_allowed(self.head.method)
        ):
            self.attempt += 1
            self._replay()
            self._next_upstream()
            return
        self._answer_failure(error.kind)

    def _answer_failure(self, kind: str) -> None:
        if kind == "timeout":
            self.fail(responses.GATEWAY_TIMEOUT, 504)
        elif kind == "invalid_response":
            self.fail(responses.BAD_GATEWAY_RESPONSE, 502)
        else:
            self.fail(responses.BAD_GATEWAY, 502)

    def _replay(self) -> None:
        assert self.replay is not None
        self.out = list(self.replay)
        self.out_size = self.replay_size

    def fail(self, canned: bytes, status: int) -> None:
        """Answer the client ourselves (when nothing of a response has gone out yet)."""
        if self.finished:
            return
        self.out.clear()
        if not self.client.answering(self):  # a pipelined request: answered in its turn
            self.canned, self.canned_status = canned, status
            return
        self.abandon()
        if self.response_started:
            self.client.abort()
            self._finish(record=False)
            return
        self.status = status
        self.keep_alive = False
        self.client.buffer(canned)
        self.client.flush()
        self._finish()

    # -- response side (ResponseSink) ------------------------------------------------------------
    def interim_response(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        head += [b"%s: %s\r\n" % pair for pair in headers]
        head.append(b"\r\n")
        self.client.buffer(b"".join(head))

    def response_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        settings = self.ctx.settings
        self.status = status
        self.response_started = True
        if not self.request_complete and not upgrade:
            self.keep_alive = False  # the rest of the request body would have to be read
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        table = self.ctx.response_table
        content_length = chunked = hsts = False
        for name, value in headers:
            kind = table.get(name, MISS)
            if isinstance(kind, Miss):
                kind = classify(table, name)
            if kind is None:
                parts.append(b"%s: %s\r\n" % (name, value))
            elif kind is H.CONTENT_LENGTH:
                content_length = True
                parts.append(b"%s: %s\r\n" % (name, value))
            elif kind is H.TRANSFER_ENCODING:
                chunked = True
            elif kind is H.HSTS:
                hsts = True
                parts.append(b"%s: %s\r\n" % (name, value))
            elif kind is H.UPGRADE and upgrade:
                parts.append(b"%s: %s\r\n" % (name, value))
            elif kind in (H.HOST, H.XFF, H.XFP, H.XFH, H.FORWARDED, H.EXPECT, H.STRIP):
                parts.append(b"%s: %s\r\n" % (name, value))  # ordinary in a response
        if upgrade:
            parts.append(b"Connection: upgrade\r\n")
        elif self.head.method == b"HEAD" or status in NO_BODY_STATUS:
            pass
        elif chunked or not content_length:
            self.close_delimited = not chunked
            if self.head.http11:
                self.chunked_out = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # an HTTP/1.0 client reads to the connection's end
        if settings.hsts and not hsts:
            parts.append(b"Strict-Transport-Security: " + settings.hsts + b"\r\n")
        if settings.via:
            parts.append(b"Via: " + settings.via + b"\r\n")
        if not upgrade and not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        self.client.buffer(b"".join(parts))
        if upgrade:
            self._tunnel()

    def response_body(self, data: bytes) -> None:
        if self.chunked_out:
            self.client.buffer(b"%x\r\n" % len(data))
            self.client.buffer(data)
            self.client.buffer(b"\r\n")
        else:
            self.client.buffer(data)

    def response_done(self) -> None:
        if self.chunked_out:
            self.client.buffer(b"0\r\n\r\n")
        self.conn = None
        self.uncount()
        upstream = self.upstream
        if upstream is not None and upstream.on_success is not None:
            upstream.on_success(upstream, self.status, time.monotonic() - self.head.started)
        self._finish()

    def flush(self) -> None:
        self.client.flush()

    def upstream_writable(self, writable: bool) -> None:
        if writable:
            self.client.resume_reading("upstream")
        else:
            self.client.pause_reading("upstream")

    # -- upgrade: the two connections become one byte pipe -------------------------------------
    # From the 101 on, the upstream connection belongs to the tunnel (never to the pool), and
    # each side's close closes the other. The exchange stays counted against its upstream
    # until then, as nginx counts an upgraded connection in its peer's conns.
    def _tunnel(self) -> None:
        conn = self.conn
        assert conn is not None and conn.transport is not None
        client_transport = self.client.start_tunnel(conn)
        assert client_transport is not None
        self.request_complete = True
        stats = self.ctx.stats

        # Bytes already on their way when the other side closed are dropped with it.
        def to_client(data: bytes) -> None:
            if not client_transport.is_closing():
                stats.bytes_out += len(data)
                client_transport.write(data)

        conn.tunnel = to_client
        self._record()
        if self.upgrade_tail:
            conn.write(self.upgrade_tail)
            self.upgrade_tail = b""

    def tunnel_opened(self) -> None:
        """The 101 has been read whole: this exchange is done, its connections are a tunnel."""
        upstream = self.upstream
        if upstream is not None and upstream.on_success is not None:
            upstream.on_success(upstream, self.status, time.monotonic() - self.head.started)
        self.finished = True  # recorded when the tunnel opened
        self.client.finished(self)

    def tunnel_closed(self) -> None:
        self.uncount()
        self.client.close()

    # -- the end -------------------------------------------------------------------------------
    def _record(self) -> None:
        ctx = self.ctx
        seconds = time.monotonic() - self.head.started
        ctx.stats.request(self.head.method, self.status, seconds)
        if ctx.settings.access_log:
            ctx.log_access(self.head, self.status, self.upstream, seconds)

    # Counted from the pick (as nginx's peer->conns), so least_conn and max_conns see
    # requests still connecting.
    def count(self, upstream: Upstream) -> None:
        if self.counted is not upstream:
            self.uncount()
            upstream.active += 1
            self.counted = upstream

    def uncount(self) -> None:
        if self.counted is not None:
            self.counted.active -= 1
            self.counted = None

    def _finish(self, record: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        self.uncount()
        if record:
            self._record()
        self.client.finished(self)
