"""A listening proxy: accepts client connections, hands each request head to `pick`, drains
on shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from time import monotonic

from podkit.proxy.downstream import ClientConnection
from podkit.proxy.exchange import IDEMPOTENT, Exchange
from podkit.proxy.headers import classifier
from podkit.proxy.settings import ProxySettings
from podkit.proxy.stats import ProxyStats
from podkit.proxy.upstream import ALL_UPSTREAMS, Upstream

log = logging.getLogger(__name__)
SWEEP_INTERVAL = 0.25  # how late a timeout may fire
access = logging.getLogger("access")

# The seam between the engine and a service: the upstream for this request head on this
# attempt (0 first, then each retry), or None when there is none left to try.
Pick = Callable[[Exchange, int], Upstream | None]
SubjectOf = Callable[[asyncio.Transport], bytes | None]


class ProxyServer:
    def __init__(
        self,
        settings: ProxySettings,
        pick: Pick,
        *,
        client_subject: SubjectOf | None = None,
        retry_non_idempotent: bool = False,
    ) -> None:
        self.settings = settings
        self.pick = pick
        self.stats = ProxyStats()
        self.connections: set[ClientConnection] = set()
        self.draining = False
        self.request_table = classifier(settings.client_subject_header)
        self.response_table = classifier(b"")
        self._client_subject = client_subject
        self._retry_non_idempotent = retry_non_idempotent
        self._servers: list[asyncio.AbstractServer] = []
        self._empty = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    # -- used by connections
    def client_subject(self, transport: asyncio.Transport) -> bytes | None:
        return self._client_subject(transport) if self._client_subject else None

    def retry_allowed(self, exchange: Exchange) -> bool:
        return self._retry_non_idempotent or exchange.method in IDEMPOTENT

    def opened(self, conn: ClientConnection) -> None:
        self.connections.add(conn)
        self.stats.connections_active += 1
        self.stats.connections_total += 1
        self._empty.clear()

    def closed_connection(self, conn: ClientConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.stats.connections_active -= 1
        if not self.connections:
            self._empty.set()

    def access_log(self, exchange: Exchange, seconds: float) -> None:
        access.info(
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "client": exchange.client.peer,
                    "method": exchange.method.decode("latin-1"),
                    "target": exchange.url.decode("latin-1"),
                    "status": exchange.status,
                    "upstream": exchange.upstream.url if exchange.upstream else None,
                    "duration_ms": round(seconds * 1000, 3),
                }
            )
        )

    # -- lifecycle
    def connection(self) -> ClientConnection:
        """The protocol factory for a listening socket (plain or TLS, made by the caller)."""
        return ClientConnection(self)

    async def listen(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Listen on host:port with plain HTTP."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            self.connection, host, port, reuse_port=reuse_port or None, backlog=4096
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
                    self.closed_connection(conn)
            for upstream in list(ALL_UPSTREAMS):
                upstream.sweep(now)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        """Stop accepting, close idle connections, let in-flight exchanges finish."""
        self.draining = True
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
