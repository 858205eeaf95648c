"""TcpTunnel with a TcpUpstreams of the test's own, over loopback sockets in this event loop:
the next upstream after a failed dial, what it is told (dials, failures, the end with the
bytes each way), the preamble before the client's first byte, both half-closes ending the
connection, the counters, and the drain; and the sidecar's form (one Upstream) unchanged."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from proxy_fakes import FakeTransport

from podkit.proxy import ProxySettings, Upstream
from podkit.proxy.stats import ProxyStats
from podkit.proxy.tunnel import TcpTunnel, TcpUpstreams, TunnelEnd

TIMEOUT = 5.0


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Recorder:
    """Hands out `order` in turn and writes down every call."""

    def __init__(self, order: list[Upstream]) -> None:
        self.order = order
        self.calls: list[tuple[str, str, object]] = []

    def upstreams(self) -> TcpUpstreams:
        return TcpUpstreams(self.pick, self.connected, self.failed, self.closed)

    def pick(self, client: TunnelEnd, attempt: int) -> Upstream | None:
        if client.state is None:
            client.state = "mine"
        up = self.order[attempt] if attempt < len(self.order) else None
        self.calls.append(("pick", up.url if up else "-", attempt))
        return up

    def connected(self, client: TunnelEnd, upstream: Upstream) -> None:
        self.calls.append(("connected", upstream.url, client.state))

    def failed(self, client: TunnelEnd, upstream: Upstream, kind: str) -> None:
        self.calls.append(("failed", upstream.url, kind))

    def closed(self, client: TunnelEnd, upstream: Upstream) -> None:
        back = client.peer.received if client.peer is not None else -1
        self.calls.append(("closed", upstream.url, (client.received, back)))


class Backend:
    """Echoes in upper case what it reads; its first read is kept; EOF ends its writing."""

    def __init__(self) -> None:
        self.first: bytes = b""
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.first = self.first or data
            writer.write(data.upper())
            await writer.drain()
        writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    b = Backend()
    server = await asyncio.start_server(b.handle, "127.0.0.1", 0)
    b.port = server.sockets[0].getsockname()[1]
    async with server:
        yield b


async def serve(tunnel: TcpTunnel) -> tuple[asyncio.AbstractServer, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(tunnel.connection, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def upstream(port: int) -> Upstream:
    return Upstream(f"http://127.0.0.1:{port}", ProxySettings(connect_timeout=2.0))


async def round_trip(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    return answer


async def settled(check: Callable[[], bool]) -> None:
    """Polls: the tunnel has no event to wait on for these."""
    async with asyncio.timeout(TIMEOUT):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_refused_dial_goes_to_the_next_upstream_and_each_outcome_is_told(
    backend: Backend,
) -> None:
    dead, alive = upstream(closed_port()), upstream(backend.port)
    chooser = Recorder([dead, alive])
    stats = ProxyStats()
    tunnel = TcpTunnel(chooser.upstreams(), stats)
    server, port = await serve(tunnel)
    async with server:
        assert await round_trip(port, b"ping") == b"PING"
        await settled(lambda: not tunnel.ends)
    assert chooser.calls == [
        ("pick", dead.url, 0),
        ("failed", dead.url, "connect"),
        ("pick", alive.url, 1),
        ("connected", alive.url, "mine"),  # the chooser's own state travels with the client
        ("closed", alive.url, (4, 4)),  # 4 bytes up, 4 back
    ]
    assert stats.upstream_errors == {"connect": 1}
    assert (stats.connections_total, stats.connections_active) == (1, 0)
    assert (stats.bytes_in, stats.bytes_out) == (4, 4)


async def test_no_upstream_left_closes_the_client() -> None:
    dead = upstream(closed_port())
    chooser = Recorder([dead])
    tunnel = TcpTunnel(chooser.upstreams(), ProxyStats())
    server, port = await serve(tunnel)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # closed, nothing sent
        writer.close()
    assert [c[0] for c in chooser.calls] == ["pick", "failed", "pick"]
    assert chooser.calls[-1] == ("pick", "-", 1)


async def test_the_preamble_goes_first_made_from_the_clients_transport(backend: Backend) -> None:
    seen: list[tuple[str, int]] = []

    def preamble(transport: asyncio.Transport) -> bytes:
        seen.append(transport.get_extra_info("peername"))
        return b"HELLO "

    tunnel = TcpTunnel(upstream(backend.port), ProxyStats(), preamble=preamble)
    server, port = await serve(tunnel)
    async with server:
        assert await round_trip(port, b"ping") == b"HELLO PING"
    assert backend.first.startswith(b"HELLO ")
    assert seen and seen[0][0] == "127.0.0.1"


async def test_both_half_closes_end_the_connection(backend: Backend) -> None:
    """The client half-closes, the upstream answers and half-closes too: both transports
    close (plain TCP can write EOF, so neither close may wait for the other)."""
    chooser = Recorder([upstream(backend.port)])
    tunnel = TcpTunnel(chooser.upstreams(), ProxyStats())
    server, port = await serve(tunnel)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"abc")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"ABC"
        await settled(lambda: not tunnel.ends)
        writer.close()
    assert chooser.calls[-1][0] == "closed"


async def test_the_sidecars_form_one_upstream_tried_once(backend: Backend) -> None:
    up = upstream(backend.port)
    tunnel = TcpTunnel(up, ProxyStats())
    assert tunnel.upstreams.connected is None and tunnel.upstreams.closed is None
    assert tunnel.upstreams.pick(TunnelEnd(), 0) is up
    assert tunnel.upstreams.pick(TunnelEnd(), 1) is None
    server, port = await serve(tunnel)
    async with server:
        assert await round_trip(port, b"x" * 100_000) == b"X" * 100_000


async def test_drain_waits_for_open_connections_then_closes_the_rest(backend: Backend) -> None:
    tunnel = TcpTunnel(upstream(backend.port), ProxyStats())
    server, port = await serve(tunnel)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"HI"
    server.close()
    # The connection ends on its own within the bound: drain returns when it has.
    ending = asyncio.get_running_loop().call_later(0.2, writer.write_eof)
    started = asyncio.get_running_loop().time()
    await tunnel.drain(TIMEOUT)
    assert 0.15 < asyncio.get_running_loop().time() - started < TIMEOUT - 1
    ending.cancel()
    writer.close()
    # One that stays open is closed at the bound.
    server, port = await serve(tunnel)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"HI"
    server.close()
    await tunnel.drain(0.2)
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()


class HalfClosable(FakeTransport):
    """A fake transport that can half-close, as a TCP one can."""

    def __init__(self) -> None:
        super().__init__()
        self.eof_written = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


async def test_an_eof_before_the_upstream_is_connected_follows_the_bytes_read() -> None:
    """`printf 'PING' | nc -N host port`: the client half-closes while the upstream is still
    being dialled; its bytes, then its EOF, go upstream once there is one, and the client's
    side stays open for the answer."""
    client, upstream_end = TunnelEnd(client_side=True), TunnelEnd()
    client_transport, upstream_transport = HalfClosable(), HalfClosable()
    client.connection_made(client_transport)  # type: ignore[arg-type]
    client.data_received(b"PING")
    assert client.eof_received() is True  # kept open: the answer is still to come
    upstream_end.connection_made(upstream_transport)  # type: ignore[arg-type]
    client.pair(upstream_end)
    assert upstream_transport.take() == b"PING" and upstream_transport.eof_written
    assert not client_transport.closed and not upstream_transport.closed
    upstream_end.data_received(b"PONG")
    assert client_transport.take() == b"PONG"
