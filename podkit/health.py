"""Liveness and readiness, as the admin endpoints report them.

/healthz answers 200 while the process serves at all. /readyz answers 200 only when the
service is up, not draining, and its own readiness check passes (for the proxies: the
upstream answers; for the adapter: always, since Redis being down is reported as redis_up 0).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[str | None]]  # None when ready, else the reason


@dataclass
class Health:
    ready: bool = False
    check: ReadinessCheck | None = None


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def readyz_handler(health: Health) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_request: web.Request) -> web.Response:
        if not health.ready:
            return web.Response(status=503, text="not ready: starting or shutting down\n")
        if health.check is not None:
            reason = await health.check()
            if reason is not None:
                return web.Response(status=503, text=f"not ready: {reason}\n")
        return web.Response(text="ok\n")

    return readyz


def add_health_routes(app: web.Application, health: Health) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(health))
