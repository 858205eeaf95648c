"""serve_app: ready while serving, unready at once on stop, in-flight requests finish."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from podkit.admin import add_health_routes
from podkit.health import Health
from podkit.lifecycle import serve_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stop_drains_in_flight_requests() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        started.set()
        await release.wait()
        return web.Response(text="finished")

    health = Health()
    app = web.Application()
    app.router.add_get("/slow", slow)
    add_health_routes(app, health)
    stop = asyncio.Event()
    port = free_port()
    server = asyncio.create_task(
        serve_app(app, "127.0.0.1", port, health=health, stop=stop, shutdown_timeout=5)
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    assert r.status == 200
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        in_flight = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/slow"))
        await started.wait()
        stop.set()
        await asyncio.sleep(0.05)
        assert health.ready is False  # unready at once, before the drain ends
        release.set()
        response = await in_flight
        assert response.status == 200 and await response.text() == "finished"
    await asyncio.wait_for(server, 5)


async def test_readiness_check_reason() -> None:
    async def upstream_down() -> str | None:
        return "upstream 127.0.0.1:8080 refused the connection"

    health = Health(ready=True, check=upstream_down)
    app = web.Application()
    add_health_routes(app, health)
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert "refused" in await response.text()
