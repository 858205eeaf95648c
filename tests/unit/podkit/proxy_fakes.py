"""Protocols wired to fake transports: bytes in, bytes out, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.connection import UpstreamConnection


class FakeTransport:
    def __init__(
        self, protocol: asyncio.Protocol | None = None, peer: tuple[str, int] = ("10.0.0.7", 50000)
    ) -> None:
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False
        self.paused = False
        self.extra: dict[str, Any] = {"peername": peer, "sockname": ("10.0.0.1", 8443)}

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    abort = close

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def can_write_eof(self) -> bool:
        return False

    def set_protocol(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol  # a tunnel end takes the connection over

    def get_protocol(self) -> asyncio.Protocol | None:
        return self.protocol


class FakeUpstream:
    """An Upstream whose connections are fake transports the test answers by hand; every
    other attribute is the real Upstream's."""

    def __init__(self, settings: ProxySettings, refuse: bool = False) -> None:
        self.conns: list[UpstreamConnection] = []
        self.transports: list[FakeTransport] = []
        self.refuse = refuse
        self.real = Upstream("http://upstream.test:8080", settings, dialer=self._dial)

    async def _dial(self, upstream: Upstream) -> UpstreamConnection:
        if self.refuse:
            raise ConnectionRefusedError("connection refused")
        conn = UpstreamConnection(upstream)
        transport = FakeTransport(conn)
        conn.connection_made(transport)  # type: ignore[arg-type]
        self.conns.append(conn)
        self.transports.append(transport)
        return conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def sent(self, index: int = -1) -> bytes:
        return self.transports[index].take()


class Harness:
    def __init__(
        self,
        settings: ProxySettings | None = None,
        identity: bytes = b"",
        refuse: bool = False,
        peer: tuple[str, int] = ("10.0.0.7", 50000),
    ) -> None:
        self.settings = settings or ProxySettings()
        self.upstream = FakeUpstream(self.settings, refuse=refuse)
        self.server = ProxyServer(
            self.settings,
            lambda _head, attempt: self.upstream.real if attempt == 0 else None,
            client_identity=(lambda _t: identity) if identity else None,
        )
        self.client = self.server.connection()
        self.transport = FakeTransport(self.client, peer=peer)
        self.client.connection_made(self.transport)  # type: ignore[arg-type]

    async def send(self, data: bytes) -> None:
        # Whichever protocol has the connection now: the client connection, or a tunnel end.
        assert self.transport.protocol is not None
        self.transport.protocol.data_received(data)
        await settle()

    async def reply(self, data: bytes, index: int = -1) -> None:
        protocol = self.upstream.transports[index].protocol
        assert protocol is not None
        protocol.data_received(data)
        await settle()

    def received(self) -> bytes:
        return self.transport.take()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
