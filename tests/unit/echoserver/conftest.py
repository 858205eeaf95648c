from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from echoserver.app import HEALTH, create_app
from echoserver.config import EchoConfig

SERVER_NAME = "unit"


@dataclass
class RawResponse:
    head: list[str]  # status line and header lines
    body: bytes
    local_port: int  # the port the request came from, as the server saw it


RawExchange = Callable[[bytes], Awaitable[RawResponse]]


@pytest.fixture
def server_name() -> str:
    return SERVER_NAME


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = create_app(EchoConfig(name=SERVER_NAME))
    app[HEALTH].ready = True
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
def raw(client: TestClient) -> RawExchange:
    """Send request bytes exactly as given; read until the server closes the connection."""

    async def exchange(request: bytes) -> RawResponse:
        assert client.server.port is not None
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        try:
            writer.write(request)
            await writer.drain()
            local_port = int(writer.get_extra_info("sockname")[1])
            data = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, body = data.partition(b"\r\n\r\n")
        return RawResponse(head.decode().split("\r\n"), body, local_port)

    return exchange
