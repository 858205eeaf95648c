"""A byte tunnel between a client connection and an upstream one: the sidecar's tcp mode
(TLS termination without HTTP) and every connection after `101 Switching Protocols`.

Each end is the asyncio protocol of one transport and writes what it reads to the other;
either side's close closes the other (after a half-close where the transport allows it),
and each side's reading pauses while the other's write buffer is full.
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
        "stats",
        "transport",
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.flow.transport = self.transport
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
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
        peer = self.peer
        if peer is not None and peer.transport is not None:
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
                return True  # half-close: the other direction may still send
            peer.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        self.transport = None
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
        for end in (self, other):
            if end.pending and end.peer is not None and end.peer.transport is not None:
                end.peer.transport.write(b"".join(end.pending))
                end.pending.clear()


def take_over(transport: asyncio.Transport, end: TunnelEnd) -> None:
    """Hand a transport that already has a protocol over to a tunnel end."""
    transport.set_protocol(end)
    end.connection_made(transport)
    transport.resume_reading()  # whatever held the old protocol's reading no longer holds


class TcpTunnel:
    """tcp mode: each accepted client connection is tunnelled to a new upstream one."""

    def __init__(self, upstream: Upstream, stats: ProxyStats) -> None:
        self.upstream = upstream
        self.stats = stats
        self.ends: set[TunnelEnd] = set()  # the client ends, closed on drain
        self._tasks: set[asyncio.Future[None]] = set()

    def connection(self) -> TunnelEnd:
        """The protocol factory for the listening socket."""
        end = TunnelEnd(self.stats, client_side=True)
        end.on_made = self._made
        end.on_lost = lambda _exc: self.ends.discard(end)
        return end

    def _made(self, client: TunnelEnd) -> None:
        self.ends.add(client)
        client.flow.pause(PEER_FULL)  # nothing to write to until the upstream answers
        task = asyncio.ensure_future(self._connect(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, client: TunnelEnd) -> None:
        up = self.upstream
        other = TunnelEnd()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(up.settings.connect_timeout):
                if up.path:
                    await loop.create_unix_connection(lambda: other, up.path)
                else:
                    await loop.create_connection(lambda: other, up.host, up.port)
        except (OSError, TimeoutError) as exc:
            log.warning("tcp upstream %s unreachable: %s", up.url, exc)
            if client.transport is not None:
                client.transport.close()
            return
        if client.transport is None:  # the client left while connecting
            if other.transport is not None:
                other.transport.close()
            return
        client.pair(other)
        client.flow.resume(PEER_FULL)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for end in list(self.ends):
            if end.transport is not None:
                end.transport.close()
