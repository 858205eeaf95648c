"""A listening proxy: accepts client connections, hands each request head to `pick`, drains
on shutdown."""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from podkit.proxy.context import Context, IdentityOf, Pick
from podkit.proxy.downstream import ClientConnection, Listener
from podkit.proxy.proxy_header import ProxyHeaderReader
from podkit.proxy.settings import ProxySettings
from podkit.proxy.stats import ProxyStats

log = logging.getLogger(__name__)
SWEEP_INTERVAL = 0.25  # how late a timeout may fire


class ProxyServer(Listener):
    def __init__(
        self, settings: ProxySettings, pick: Pick, client_identity: IdentityOf | None = None
    ) -> None:
        self.ctx = Context(settings, pick, client_identity)
        self.connections: set[ClientConnection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._empty = asyncio.Event()
        self._sweeper: asyncio.Future[None] | None = None

    @property
    def settings(self) -> ProxySettings:
        return self.ctx.settings

    @property
    def stats(self) -> ProxyStats:
        return self.ctx.stats

    # -- Listener: called by connections
    def opened(self, conn: ClientConnection) -> None:
        self.connections.add(conn)
        stats = self.ctx.stats
        stats.connections_active += 1
        stats.connections_total += 1
        self._empty.clear()

    def closed(self, conn: ClientConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.ctx.stats.connections_active -= 1
        if not self.connections:
            self._empty.set()

    # -- lifecycle
    def connection(self, source: str = "", port: int = 0) -> ClientConnection:
        """The protocol factory for a listening socket (plain or TLS, made by the caller);
        `source`: the client's address from a PROXY protocol header (its port unused)."""
        return ClientConnection(self.ctx, self, source)

    def proxy_header_reader(self) -> ProxyHeaderReader:
        """The protocol factory for a plain listening socket with --proxy-protocol-from."""
        settings = self.ctx.settings
        return ProxyHeaderReader(
            self.connection, settings.proxy_protocol_from, settings.header_timeout, self.stats
        )

    async def listen(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on host:port with plain HTTP (after a PROXY header from the peers that
        must send one)."""
        loop = asyncio.get_running_loop()
        factory = (
            self.proxy_header_reader if self.ctx.settings.proxy_protocol_from else self.connection
        )
        server = await loop.create_server(
            factory, host, port, reuse_port=reuse_port or None, backlog=4096
        )
        self.serving(server)

    def serving(self, server: asyncio.AbstractServer) -> None:
        """Count `server` as one of ours: closed on drain; and start the deadline sweeper."""
        self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        """Time out waits (request heads, bodies, idle keep-alive, upstream replies)."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = monotonic()
            for conn in list(self.connections):
                conn.check(now)
                transport = conn.transport
                if (
                    transport is not None
                    and transport.is_closing()
                    and (transport.get_write_buffer_size() == 0)
                ):
                    # Closed with nothing left to send, yet connection_lost never came: a
                    # TLS layer that lost its peer mid-handshake can fail to report it.
                    self.closed(conn)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        """Stop accepting, close idle connections, let in-flight exchanges finish."""
        self.ctx.draining = True
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.idle():
                conn.close()
        if self.connections:
            try:
                await asyncio.wait_for(self._empty.wait(), timeout)
            except TimeoutError:
                log.warning("drain timed out: aborting %d connection(s)", len(self.connections))
                for conn in list(self.connections):
                    conn.abort()
        for server in self._servers:
            await server.wait_closed()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.ctx.access is not None:
            self.ctx.access.flush()
