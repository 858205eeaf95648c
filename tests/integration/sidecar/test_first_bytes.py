"""FirstBytes on both loops the sidecar runs on (uvloop, and asyncio's own when uvloop is
absent): a TLS client is served through the loop's own TLS protocol, its first bytes
included; plain HTTP gets nginx's 400; a client that sends nothing is dropped; how each
handshake ends is counted (stalled, left half-way), and a good one never is."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

import pytest
import uvloop
from support.sidecar_fixtures import Pki, pki_fixture  # noqa: F401 - fixture, used by name

from sidecar.first_bytes import PLAIN_HTTP_ANSWER, FirstBytes

LOOPS = pytest.mark.parametrize(
    "new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)


class Upper(asyncio.Protocol):
    """The application behind the TLS layer: answers every chunk upper-cased."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert transport.get_extra_info("ssl_object") is not None  # it runs over TLS
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


def serve(
    new_loop: Callable[[], asyncio.AbstractEventLoop],
    pki: Pki,
    client: Callable[[int], object],
    expected: dict[str, int],
    timeout: float = 5.0,
    answer_plain_http: bool = True,
) -> dict[str, int]:
    """Run `client(port)` (a coroutine function) against FirstBytes on a fresh loop; return
    the failures counted once they are `expected` (or 5 s passed), and a moment later."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki.leaf.configure_cert(context)
    failures: dict[str, int] = {}

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: FirstBytes(Upper, context, timeout, failures, answer_plain_http),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.wait_for(client(port), 10)  # type: ignore[arg-type]
            for _ in range(250):
                if failures == expected:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # anything counted twice, or wrongly, has been by now
        finally:
            server.close()

    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return failures


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


@LOOPS
def test_tls_client_is_served_from_its_first_byte(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=pki.client_context(), server_hostname="localhost"
        )
        big = b"x" * 300_000  # more than the first read and more than one TLS record
        writer.write(big)
        assert await reader.readexactly(len(big)) == big.upper()
        writer.write(b"again")
        assert await reader.readexactly(5) == b"AGAIN"
        await close(writer)

    assert serve(new_loop, pki, client, {}) == {}


@LOOPS
def test_plain_http_gets_400(new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert await reader.read() == PLAIN_HTTP_ANSWER  # all of it, then closed
        await close(writer)

    assert serve(new_loop, pki, client, {"plain_http": 1}) == {"plain_http": 1}


@LOOPS
def test_other_bytes_are_left_to_tls_to_refuse(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x01\x02\x03 not a TLS record")
        data = await reader.read()
        assert not data.startswith(b"HTTP/")
        await close(writer)

    assert serve(new_loop, pki, client, {}) == {}  # not taken for plain HTTP


@LOOPS
def test_plain_http_goes_to_tls_where_not_answered(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert not (await reader.read()).startswith(b"HTTP/")
        await close(writer)

    assert serve(new_loop, pki, client, {}, answer_plain_http=False) == {}


@LOOPS
def test_silent_client_is_dropped_and_counted(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await reader.read() == b""  # serve() gives up after 10 s: not dropped
        except ConnectionResetError:
            pass
        await close(writer)

    assert serve(new_loop, pki, client, {"timeout": 1}, timeout=0.5) == {"timeout": 1}


@LOOPS
def test_handshake_stalled_after_the_client_hello_is_counted(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(pki.client_hello())
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):  # the server's flight, then the drop
                pass
        await close(writer)

    assert serve(new_loop, pki, client, {"timeout": 1}, timeout=0.5) == {"timeout": 1}


@LOOPS
def test_client_leaving_half_way_is_counted(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(pki.client_hello())
        await reader.read(1)  # the server answered: the handshake is under way
        await close(writer)

    expected = {"client_closed": 1}
    assert serve(new_loop, pki, client, expected) == expected


@LOOPS
def test_neither_a_bare_tcp_check_nor_a_good_handshake_closed_at_once_is_counted(
    new_loop: Callable[[], asyncio.AbstractEventLoop], pki: Pki
) -> None:
    async def client(port: int) -> None:
        loop = asyncio.get_running_loop()
        context = pki.client_context()

        def connect_and_leave(handshake: bool) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                if handshake:  # the Finished and the FIN reach the server together
                    context.wrap_socket(sock, server_hostname="localhost").close()

        for _ in range(10):
            await loop.run_in_executor(None, connect_and_leave, False)
            await loop.run_in_executor(None, connect_and_leave, True)

    assert serve(new_loop, pki, client, {}) == {}
