"""Who may connect: a verified client certificate that no `--allow-*` rule admits gets a 403
(http mode) or a closed connection (tcp mode), and is counted; an admitted one gets the
connection's real protocol, which then runs as if it had been there from the start.

The gate sits between the TLS layer and the engine only when allow-lists are set, and acts
once per connection (when the handshake is done), so requests pay nothing for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from sidecar.identity import Identities

log = logging.getLogger(__name__)

FORBIDDEN_BODY = b"403 Forbidden: the client certificate is not allowed\n"
FORBIDDEN = (
    b"HTTP/1.1 403 Forbidden\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s" % (len(FORBIDDEN_BODY), FORBIDDEN_BODY)
)


class Refusals:
    """Connections refused by the allow-lists, for /metrics."""

    def __init__(self) -> None:
        self.count = 0


class Gate(asyncio.Protocol):
    """A connection's first protocol after the handshake: admits it (handing the transport
    to `app_factory()`'s protocol) or refuses it."""

    def __init__(
        self,
        app_factory: Callable[[], asyncio.BaseProtocol],
        identities: Identities,
        refusals: Refusals,
        *,
        http: bool,
        head_timeout: float,
        max_head: int,
    ) -> None:
        self.app_factory = app_factory
        self.identities = identities
        self.refusals = refusals
        self.http = http
        self.head_timeout = head_timeout
        self.max_head = max_head
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        reading = self.identities.read(transport)
        if reading.admitted:
            app = self.app_factory()
            transport.set_protocol(app)
            app.connection_made(transport)
            return
        self.refusals.count += 1
        peer = transport.get_extra_info("peername")
        log.info(
            "%s: client certificate not allowed: %s",
            peer[0] if isinstance(peer, tuple) else "-",
            reading.subject or "no certificate",
        )
        if not self.http:
            transport.close()
            return
        # Read the request head first, so that the client reads the 403 rather than a reset.
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.head_timeout, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.head += data
        if b"\r\n\r\n" in self.head or len(self.head) > self.max_head:
            self.transport.write(FORBIDDEN)
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None
