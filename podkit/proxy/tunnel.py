"""A byte pipe between a client connection and an upstream: TLS termination without HTTP
(the sidecar's tcp mode). Each side pauses reading while the other's write buffer is full."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from podkit.proxy.upstream import Upstream

log = logging.getLogger(__name__)


class Pipe(asyncio.Protocol):
    """One direction's reader; writes what it reads to `peer`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Pipe | None = None
        self.pending: list[bytes] = []  # read before the other side existed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
        elif not peer.transport.is_closing():  # else the other side is gone: so is this one
            peer.transport.write(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.transport is not None:
            if self.peer.transport.can_write_eof():
                self.peer.transport.write_eof()
                return True  # half-close: the other direction may still send
            self.peer.transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        self.transport = None

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class TunnelClient(Pipe):
    """The client side: opens the upstream connection when a client connects."""

    def __init__(self, upstream: Upstream, connections: set[TunnelClient]) -> None:
        super().__init__()
        self.upstream = upstream
        self.connections = connections
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connections.add(self)
        assert self.transport is not None
        self.transport.pause_reading()
        self._task = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        up = self.upstream
        try:
            async with asyncio.timeout(up.settings.connect_timeout):
                if up.path:
                    _, other = await loop.create_unix_connection(Pipe, up.path)
                else:
                    _, other = await loop.create_connection(Pipe, up.host, up.port)
        except (OSError, TimeoutError) as exc:
            log.warning("tcp upstream %s unreachable: %s", up.url, exc)
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is None:
            if other.transport is not None:
                other.transport.close()
            return
        self.peer, other.peer = other, self
        if self.pending and other.transport is not None:  # read before reading was paused
            other.transport.write(b"".join(self.pending))
            self.pending.clear()
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self._task is not None:
            self._task.cancel()
        super().connection_lost(exc)
