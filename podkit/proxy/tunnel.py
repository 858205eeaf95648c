"""A byte tunnel between a client connection and an upstream one: the sidecar's tcp mode
(TLS termination without HTTP), the ambassador's tcp mode (L4 balancing), and every
connection after `101 Switching Protocols`.

Each end is the asyncio protocol of one transport and writes what it reads to the other;
either side's close closes the other (after a half-close where the transport allows it),
and each side's reading pauses while the other's write buffer is full.

TcpTunnel's seam is `TcpUpstreams`, declared here and filled by the service with callables:
which upstream each client connection is dialled to (asked again after a failed dial, as nginx's
stream `proxy_next_upstream on` does), and how each dial and connection went.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast, final

from podkit.proxy.flow import PEER_FULL, Flow
from podkit.proxy.stats import ProxyStats
from podkit.proxy.upstream import Upstream

log = logging.getLogger(__name__)

Lost = Callable[[Exception | None], None]


@final
class TunnelEnd(asyncio.Protocol):
    """One end: reads its transport, writes to the other end's."""

    __slots__ = (
        "client_side",
        "flow",
        "on_lost",
        "on_made",
        "peer",
        "pending",
        "read_eof",
        "received",
        "state",
        "stats",
        "transport",
        "upstream",
    )

    def __init__(
        self,
        stats: ProxyStats | None = None,
        client_side: bool = False,
        on_lost: Lost | None = None,
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self.flow = Flow()
        self.peer: TunnelEnd | None = None
        self.pending: list[bytes] = []  # read before the other end existed
        self.stats = stats  # counts the client's bytes, in and out
        self.client_side = client_side
        self.on_lost = on_lost  # the protocol this end took over from, told of the close
        self.on_made: Callable[[TunnelEnd], None] | None = None
        self.received = 0  # bytes read from this end's transport
        self.read_eof = False  # its side has half-closed
        # tcp mode, on the client end: the upstream it was dialled to, and TcpUpstreams' own
        # per-connection state (what it tried, say)
        self.upstream: Upstream | None = None
        self.state: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.flow.transport = self.transport
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        self.received += len(data)
        if self.stats is not None:
            if self.client_side:
                self.stats.bytes_in += len(data)
            else:
                self.stats.bytes_out += len(data)
        if peer is None or peer.transport is None:
            self.pending.append(data)
        elif not peer.transport.is_closing():  # else the other side is gone: so is this one
            peer.transport.write(data)

    def eof_received(self) -> bool:
        self.read_eof = True
        return self.pass_eof()

    def pass_eof(self) -> bool:
        """This end's reading has ended: half-close the other end's writing. Whether this
        end's transport stays open (for what the other direction still sends)."""
        peer = self.peer
        if peer is None:
            # The upstream is still being dialled (`printf 'PING' | nc -N` half-closes at
            # once): what was read waits in `pending`, and pair() passes the EOF on after it.
            return True
        if peer.transport is None:
            return False
        if peer.read_eof:  # both directions have ended: nothing more can come
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
            return True  # half-close: the other direction may still send
        peer.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        self.transport = self.flow.transport = None  # not kept alive by the ends' cycle
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            on_lost(exc)

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.flow.pause(PEER_FULL)

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.flow.resume(PEER_FULL)

    def pair(self, other: TunnelEnd) -> None:
        """Join the two ends; what either read before goes across now."""
        self.peer, other.peer = other, self
        for end, peer in ((self, other), (other, self)):
            if end.pending and peer.transport is not None:
                peer.transport.write(b"".join(end.pending))
                end.pending.clear()
            # An end that half-closed before the other existed: its EOF goes across now.
            if end.read_eof and not end.pass_eof() and end.transport is not None:
                end.transport.close()


def take_over(transport: asyncio.Transport, end: TunnelEnd) -> None:
    """Hand a transport that already has a protocol over to a tunnel end."""
    transport.set_protocol(end)
    end.connection_made(transport)
    transport.resume_reading()  # whatever held the old protocol's reading no longer holds


async def dial(up: Upstream, stats: ProxyStats | None = None) -> TunnelEnd:
    """A new tunnel end connected to `up`, within its connect timeout (counting what it
    reads as bytes sent to the client into `stats`)."""
    end = TunnelEnd(stats)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(up.settings.connect_timeout):
        if up.path:
            await loop.create_unix_connection(lambda: end, up.path)
        else:
            await loop.create_connection(lambda: end, up.host, up.port)
    return end


# TcpTunnel's seam: what the service does for each client connection (`client`, its client
# end, whose `state` is the service's to use). Callables rather than a base class to
# subclass: a service's class is interpreted, and an interpreted class cannot inherit from a
# compiled one (the engine is compiled with mypyc).
# The upstream for try `attempt` (0, then 1, 2... after failed dials); None: no (more)
# upstream, the client connection is closed.
TcpPick = Callable[[TunnelEnd, int], Upstream | None]
# The dial succeeded: the bytes flow from now on.
TcpConnected = Callable[[TunnelEnd, Upstream], None]
# The dial failed: kind is "connect" (refused, unreachable) or "timeout".
TcpFailed = Callable[[TunnelEnd, Upstream, str], None]
# A connected client connection ended: `client.received` bytes went upstream,
# `client.peer.received` came back.
TcpClosed = Callable[[TunnelEnd, Upstream], None]


@final
class TcpUpstreams:
    """The service's callables for TcpTunnel: `pick` and, if it wants to know, the outcome
    of each dial and the end of each connection. The sidecar's is `one_upstream`; the
    ambassador's asks its balancer."""

    __slots__ = ("closed", "connected", "failed", "pick")

    def __init__(
        self,
        pick: TcpPick,
        connected: TcpConnected | None = None,
        failed: TcpFailed | None = None,
        closed: TcpClosed | None = None,
    ) -> None:
        self.pick = pick
        self.connected = connected
        self.failed = failed
        self.closed = closed


def one_upstream(upstream: Upstream) -> TcpUpstreams:
    """One fixed upstream, tried once (the sidecar's)."""

    def pick(_client: TunnelEnd, attempt: int) -> Upstream | None:
        return upstream if attempt == 0 else None

    return TcpUpstreams(pick)


# Bytes written upstream before any of the client's (a PROXY protocol header, say), made
# from the client's transport (its peername and sockname); b"" writes nothing.
Preamble = Callable[[asyncio.Transport], bytes]


class TcpTunnel:
    """tcp mode: each accepted client connection is tunnelled to a new upstream one, chosen
    by `upstreams` (or the one Upstream given), after `preamble`'s bytes if given."""

    def __init__(
        self,
        upstreams: TcpUpstreams | Upstream,
        stats: ProxyStats,
        preamble: Preamble | None = None,
    ) -> None:
        self.upstreams = (
            upstreams if isinstance(upstreams, TcpUpstreams) else one_upstream(upstreams)
        )
        self.stats = stats
        self.preamble = preamble
        self.ends: set[TunnelEnd] = set()  # the client ends, closed on drain
        self._tasks: set[asyncio.Future[None]] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def connection(self) -> TunnelEnd:
        """The protocol factory for the listening socket."""
        end = TunnelEnd(self.stats, client_side=True)
        end.on_made = self._made
        end.on_lost = lambda _exc: self._lost(end)
        return end

    def _made(self, client: TunnelEnd) -> None:
        self.ends.add(client)
        self._empty.clear()
        self.stats.connections_total += 1
        self.stats.connections_active += 1
        client.flow.pause(PEER_FULL)  # nothing to write to until the upstream answers
        task = asyncio.ensure_future(self._connect(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lost(self, client: TunnelEnd) -> None:
        if client in self.ends:
            self.ends.discard(client)
            self.stats.connections_active -= 1
        if client.upstream is not None:
            upstream, client.upstream = client.upstream, None
            if self.upstreams.closed is not None:
                self.upstreams.closed(client, upstream)
        if not self.ends:
            self._empty.set()

    async def _connect(self, client: TunnelEnd) -> None:
        attempt = 0
        while True:
            up = self.upstreams.pick(client, attempt)
            if up is None:
                if client.transport is not None:
                    client.transport.close()
                return
            attempt += 1
            try:
                other = await dial(up, self.stats)
            except (OSError, TimeoutError) as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else "connect"
                log.warning("tcp upstream %s unreachable: %s", up.url, exc or kind)
                self.stats.upstream_error(kind)
                if self.upstreams.failed is not None:
                    self.upstreams.failed(client, up, kind)
                if client.transport is None:  # the client left meanwhile
                    return
                continue
            break
        if client.transport is None:  # the client left while connecting
            if other.transport is not None:
                other.transport.close()
            return
        if self.preamble is not None and other.transport is not None:
            first = self.preamble(client.transport)
            if first:
                other.transport.write(first)
        client.upstream = up
        if self.upstreams.connected is not None:
            self.upstreams.connected(client, up)
        client.pair(other)
        client.flow.resume(PEER_FULL)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for end in list(self.ends):
            if end.transport is not None:
                end.transport.close()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        """Let open connections end on their own for up to `timeout`, then close the rest.
        (Stop accepting first: close the listening server.)"""
        if self.ends:
            try:
                await asyncio.wait_for(self._empty.wait(), timeout)
            except TimeoutError:
                log.warning("drain timed out: closing %d tcp connection(s)", len(self.ends))
        self.close()
