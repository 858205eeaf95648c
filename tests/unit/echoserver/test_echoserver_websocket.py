"""/ws echoes text and binary frames; shutdown closes open sockets instead of waiting on them."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient

from echoserver.app import HEALTH, create_app
from echoserver.config import EchoConfig
from podkit.lifecycle import serve_app


async def test_echoes_text_and_binary(client: TestClient) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hello ✓")
        assert await ws.receive_str(timeout=5) == "hello ✓"
        await ws.send_bytes(b"\x00\xff" * 40_000)
        assert await ws.receive_bytes(timeout=5) == b"\x00\xff" * 40_000


async def test_plain_get_is_told_to_upgrade(client: TestClient) -> None:
    response = await client.get("/ws")
    assert response.status == 426
    assert "WebSocket" in await response.text()


async def test_non_ascii_key_is_a_bad_request(client: TestClient) -> None:
    """Not a 500 and a traceback: aiohttp's own key check raises on such bytes."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhl\xffIHNhbXBsZSBub25jZQ==\r\n"
        b"Connection: close\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 400 ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_shutdown_closes_open_sockets_at_once() -> None:
    app = create_app(EchoConfig(name="unit"))
    stop = asyncio.Event()
    port = free_port()
    server = asyncio.create_task(
        serve_app(app, "127.0.0.1", port, health=app[HEALTH], stop=stop, shutdown_timeout=10)
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
            await ws.send_str("ping")
            assert await ws.receive_str(timeout=5) == "ping"
            stop.set()
            message = await ws.receive(timeout=5)
            assert message.type is WSMsgType.CLOSE
            assert message.data == WSCloseCode.GOING_AWAY
    # Well inside the 10 s bound: nothing was left waiting on the socket.
    await asyncio.wait_for(server, 3)
