"""--mode tcp: TLS terminated, then the bytes passed as they are to a plain TCP upstream (here
a small asyncio echo server in the test), in both directions, with the ends of connections
passed on too."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from support import metrics
from support.processes import free_port
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Sidecar,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    start_echo_fixture,
    start_sidecar_fixture,
)

TIMEOUT = 15.0


@dataclass
class TcpEcho:
    """Echoes what it reads; 'quit\\n' makes it close the connection."""

    port: int = 0
    received: int = 0
    open: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.closed.clear()
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                if data == b"quit\n":
                    break
                writer.write(data)
                await writer.drain()
        finally:
            await close(writer)
            self.open -= 1
            if not self.open:
                self.closed.set()


@pytest.fixture
async def tcp_echo() -> AsyncIterator[TcpEcho]:
    echo = TcpEcho()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    echo.port = server.sockets[0].getsockname()[1]
    async with server:
        yield echo


@pytest.fixture
async def tunnel(start_sidecar: StartSidecar, tcp_echo: TcpEcho) -> Sidecar:
    upstream = f"http://127.0.0.1:{tcp_echo.port}"
    return await asyncio.to_thread(start_sidecar, "--mode", "tcp", upstream=upstream)


async def connect(sidecar: Sidecar) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1", sidecar.port, ssl=sidecar.tls, server_hostname="localhost"
        ),
        TIMEOUT,
    )


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    async def send() -> None:
        writer.write(data)
        await writer.drain()

    async with asyncio.timeout(TIMEOUT):
        sending = asyncio.ensure_future(send())
        got = await reader.readexactly(len(data))
        await sending
    return got


async def test_bytes_pass_through_unchanged(tunnel: Sidecar, tcp_echo: TcpEcho) -> None:
    reader, writer = await connect(tunnel)
    try:
        not_http = b"\x00\x01\x02 not HTTP at all \xff\xfe\r\n\r\nGET / HTTP/1.1\r\n"
        assert await round_trip(reader, writer, not_http) == not_http
        big = os.urandom(4 * 1024 * 1024)
        assert await round_trip(reader, writer, big) == big
    finally:
        await close(writer)
    assert tcp_echo.received == len(not_http) + len(big)
    # the client's close reaches the upstream
    await asyncio.wait_for(tcp_echo.closed.wait(), TIMEOUT)


async def test_upstream_close_reaches_the_client(tunnel: Sidecar) -> None:
    reader, writer = await connect(tunnel)
    try:
        assert await round_trip(reader, writer, b"hello\n") == b"hello\n"
        writer.write(b"quit\n")
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        await close(writer)


async def test_concurrent_tunnels_stay_apart(tunnel: Sidecar) -> None:
    async def one(i: int) -> bool:
        reader, writer = await connect(tunnel)
        try:
            data = bytes([i]) * 100_000 + os.urandom(1000)
            return await round_trip(reader, writer, data) == data
        finally:
            await close(writer)

    assert all(await asyncio.gather(*(one(i) for i in range(8))))


async def test_upstream_down_closes_the_client_connection(start_sidecar: StartSidecar) -> None:
    sidecar = await asyncio.to_thread(
        start_sidecar, "--mode", "tcp", upstream=f"http://127.0.0.1:{free_port()}"
    )
    reader, writer = await connect(sidecar)
    try:
        writer.write(b"anyone there?\n")
        async with asyncio.timeout(TIMEOUT):
            try:
                data = await reader.read()
            except ConnectionError:
                data = b""
        assert data == b""
    finally:
        await close(writer)


async def test_plain_http_is_left_to_tls_and_counted(tunnel: Sidecar) -> None:
    """No HTTP answer on a port that does not speak HTTP: OpenSSL refuses the bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", tunnel.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        async with asyncio.timeout(TIMEOUT):
            with contextlib.suppress(ConnectionError):
                assert not (await reader.read()).startswith(b"HTTP/")
    finally:
        await close(writer)
    families = metrics.parse((await asyncio.to_thread(tunnel.admin, "/metrics"))[1])
    failures = metrics.value(families, "sidecar_tls_handshake_failures_total", reason="plain_http")
    assert failures == 1
