"""A request on its way to an upstream: the upstream picked (`pick`, again on a retry), a
pooled connection taken or a new one opened, the request written (and kept, while small,
to be replayed), and the failures: a retry on the next upstream or a canned 502/504.

`Exchange` (podkit.proxy.exchange) adds the response's way back.
"""

from __future__ import annotations

import asyncio
import logging
import time

from podkit.proxy import responses
from podkit.proxy.connection import ResponseSink, UpstreamConnection, UpstreamError
from podkit.proxy.context import IDEMPOTENT, Context
from podkit.proxy.flow import CONNECTING
from podkit.proxy.head import RequestHead
from podkit.proxy.settings import NEXT_ERROR, NEXT_INVALID_HEADER, NEXT_TIMEOUT, ProxySettings
from podkit.proxy.upstream import Upstream

log = logging.getLogger(__name__)

REPLAY_LIMIT = 64 * 1024  # requests up to this size are kept for a retry on a fresh connection
# The next_upstream condition each kind of failed attempt falls under (nginx's ft_type).
CONDITION = {
    "connect": NEXT_ERROR,
    "reset": NEXT_ERROR,
    "timeout": NEXT_TIMEOUT,
    "invalid_response": NEXT_INVALID_HEADER,
}


def canned_body_size(canned: bytes) -> int:
    return len(canned) - canned.find(b"\r\n\r\n") - 4


def replayable(settings: ProxySettings, method: bytes) -> bool:
    """Whether a request that was sent may be sent again (nginx: non_idempotent)."""
    return settings.retry_non_idempotent or method in IDEMPOTENT


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

    def answering(self, exchange: Attempt) -> bool:
        """Whether `exchange` is the one being answered (not a pipelined one behind it)."""
        raise NotImplementedError

    def finished(self, exchange: Attempt) -> None:
        """The exchange is over; its keep_alive says whether the connection may go on."""
        raise NotImplementedError

    def pause_reading(self, reason: int) -> None:
        """Hold reading for a podkit.proxy.flow reason."""
        raise NotImplementedError

    def resume_reading(self, reason: int) -> None:
        raise NotImplementedError

    def start_tunnel(self) -> asyncio.Transport | None:
        """The connection becomes a tunnel end's: its transport, for the tunnel to take."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class Attempt(ResponseSink):
    """The request side of one exchange on a client connection."""

    __slots__ = (
        "attempt",
        "body_sent",
        "body_size",
        "canned",
        "canned_status",
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
        # -- the answer ------------------------------------------------------------------------
        self.status = 0
        self.body_sent = 0  # response body bytes to the client (nginx's $body_bytes_sent)
        self.response_started = False
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
            self.client.pause_reading(CONNECTING)

    def start(self) -> None:
        """This exchange is now the one the client connection answers."""
        self.head.started = time.monotonic()
        if self.canned is not None:
            self.client.buffer(self.canned)
            self.status = self.canned_status
            self.body_sent = canned_body_size(self.canned)
            self.keep_alive = False
            self._finish()
            return
        self._next_upstream()

    def _next_upstream(self, picked: Upstream | None = None) -> None:
        if picked is not None:
            upstream: Upstream | None = picked
        elif self.fresh:
            upstream = self.upstream
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
        self.client.resume_reading(CONNECTING)
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
            and replayable(self.upstream.settings, self.head.method)
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
        settings = upstream.settings
        if (
            self.replay is not None
            and settings.next_upstream & CONDITION.get(error.kind, 0)
            and (error.kind == "connect" or replayable(settings, self.head.method))
        ):
            self.attempt += 1
            self._replay()
            self._next_upstream()
            return
        self._answer_failure(error.kind)

    def next_on_status(self, status: int) -> bool:
        """A response head whose status is listed (nginx: proxy_next_upstream http_503): a
        failed attempt when the request can be sent again and another upstream may be tried
        (the picker applies tries and timeout). Then the response is dropped unseen and the
        request goes on; else (False) it is passed to the client as it is."""
        upstream, conn = self.upstream, self.conn
        if (
            upstream is None
            or conn is None
            or self.replay is None
            or not replayable(upstream.settings, self.head.method)
        ):
            return False
        picked = self.ctx.pick(self.head, self.attempt + 1)
        if picked is None:
            return False
        kind = f"http_{status}"
        self.conn = None
        conn.discard()
        self.uncount()
        self.ctx.stats.upstream_error("status")
        if upstream.on_failure is not None:
            upstream.on_failure(upstream, kind)
        log.warning("upstream %s answered %d: trying %s", upstream.url, status, picked.url)
        self.last_error = kind
        self.attempt += 1
        self._replay()
        self._next_upstream(picked)
        return True

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
        self.body_sent = canned_body_size(canned)
        self.keep_alive = False
        self.client.buffer(canned)
        self.client.flush()
        self._finish()

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

    # The exchange records and ends itself: its response side knows how it ended.
    def _finish(self, record: bool = True) -> None:
        raise NotImplementedError
