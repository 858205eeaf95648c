"""The admin endpoints on aiohttp, for the services that run an aiohttp server anyway (the
adapter, the echoserver, gitsync, logagent): /healthz, /readyz, /metrics. The proxies serve
theirs without aiohttp (podkit.admin_http)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from podkit.health import Health

if TYPE_CHECKING:  # imported by admin_app only: the adapter and echoserver never load it
    from prometheus_client import CollectorRegistry


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port (no access log: probes and scrapes would flood it)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def readyz_handler(health: Health) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_request: web.Request) -> web.Response:
        reason = await health.not_ready()
        if reason is not None:
            return web.Response(status=503, text=f"not ready: {reason}\n")
        return web.Response(text="ok\n")

    return readyz


def add_health_routes(app: web.Application, health: Health) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(health))


def admin_app(health: Health, registry: CollectorRegistry) -> web.Application:
    """gitsync's admin app: health and a prometheus-client registry's /metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    add_health_routes(app, health)
    app.router.add_get("/metrics", metrics)
    return app
