"""One request and its response as they pass through the proxy.

The client connection parses the request and hands the exchange its pieces; its request
side (podkit.proxy.attempt) gets them to an upstream connection, and the response comes
back here (the connection's `ResponseSink`): its head rewritten, its body relayed in the
client's framing, and after `101 Switching Protocols` both connections turned into a tunnel.
"""

from __future__ import annotations

import time

from podkit.proxy.attempt import Attempt, ClientSide
from podkit.proxy.context import Context
from podkit.proxy.flow import PEER_FULL
from podkit.proxy.forwarding import CHUNKED, HAS_HSTS, HAS_LENGTH, pass_response_headers
from podkit.proxy.head import RequestHead
from podkit.proxy.tunnel import TunnelEnd, take_over

NO_BODY_STATUS = frozenset({204, 304})


class Exchange(Attempt):
    """A request/response pair on one client connection."""

    __slots__ = ("chunked_out", "interim_sent")

    def __init__(self, ctx: Context, client: ClientSide, head: RequestHead) -> None:
        super().__init__(ctx, client, head)
        self.chunked_out = False  # the response goes to the client chunked
        self.interim_sent = False  # a 1xx went to the client: no other upstream may answer

    # -- response side (ResponseSink) ------------------------------------------------------------
    def interim_response(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        head += [b"%s: %s\r\n" % pair for pair in headers]
        head.append(b"\r\n")
        self.interim_sent = True
        self.client.buffer(b"".join(head))

    def response_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        upstream = self.upstream
        if (
            upstream is not None
            and status in upstream.settings.next_upstream_statuses
            and not self.interim_sent
            and self.next_on_status(status)
        ):
            return  # held back: the request went on to the next upstream
        settings = self.ctx.settings
        self.status = status
        self.response_started = True
        if not self.request_complete and not upgrade:
            self.keep_alive = False  # the rest of the request body would have to be read
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        seen = pass_response_headers(self.ctx.response_table, headers, upgrade, parts)
        if upgrade:
            parts.append(b"Connection: upgrade\r\n")
        elif self.head.method == b"HEAD" or status in NO_BODY_STATUS:
            pass
        elif seen & CHUNKED or not seen & HAS_LENGTH:
            chunked = bool(seen & CHUNKED)
            self.close_delimited = not chunked
            if self.head.http11:
                self.chunked_out = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False  # an HTTP/1.0 client reads to the connection's end
        if settings.hsts and not seen & HAS_HSTS:
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
        self.body_sent += len(data)
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
            self.client.resume_reading(PEER_FULL)
        else:
            self.client.pause_reading(PEER_FULL)

    # -- upgrade: the two connections become one byte pipe -------------------------------------
    # From the 101 on, the upstream connection belongs to the tunnel (never to the pool), and
    # each side's close closes the other. The exchange stays counted against its upstream
    # until then, as nginx counts an upgraded connection in its peer's conns.
    def _tunnel(self) -> None:
        conn = self.conn
        assert conn is not None and conn.transport is not None
        client_transport = self.client.start_tunnel()
        assert client_transport is not None
        self.request_complete = True
        stats = self.ctx.stats
        client_end = TunnelEnd(stats, client_side=True, on_lost=self.client.connection_lost)
        upstream_end = TunnelEnd(stats, on_lost=conn.connection_lost)
        client_end.pair(upstream_end)
        take_over(client_transport, client_end)
        take_over(conn.transport, upstream_end)
        conn.tunnel = upstream_end.data_received  # the rest of the read that held the 101
        self._record()
        if self.upgrade_tail:  # read with the upgrade request, after its head
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
        access = ctx.access
        if access is not None:
            upstream = self.upstream
            access.record(
                self.head,
                self.status,
                self.body_sent,
                seconds,
                upstream.addr if upstream is not None else "",
                self.status if self.response_started else 0,
            )

    def _finish(self, record: bool = True) -> None:
        if self.finished:
            return
        self.finished = True
        self.uncount()
        if record:
            self._record()
        self.client.finished(self)
