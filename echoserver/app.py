"""The echo server's routes, put together by `create_app(config)`.

Specific paths first; anything else, with any method, is echoed back.
"""

from __future__ import annotations

from aiohttp import web

from echoserver import generate
from echoserver.config import EchoConfig
from echoserver.echo import SERVER_NAME, echo, upload
from echoserver.page import favicon
from echoserver.websocket import add_websocket_route
from podkit.admin import add_health_routes
from podkit.health import Health

HEALTH = web.AppKey("health", Health)
SERVED_BY = "X-Echo-Server"  # on every response: which server answered, without parsing bodies


async def _served_by(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[SERVED_BY] = request.app[SERVER_NAME]


def create_app(config: EchoConfig, health_state: Health | None = None) -> web.Application:
    app = web.Application()
    app[SERVER_NAME] = config.name
    app[HEALTH] = health_state or Health()
    app.on_response_prepare.append(_served_by)
    add_health_routes(app, app[HEALTH])
    add_websocket_route(app)
    app.router.add_route("*", "/status/{code}", generate.status)
    app.router.add_get("/bytes/{n}", generate.some_bytes)
    app.router.add_route("*", "/slow", generate.slow)
    app.router.add_get("/drip", generate.drip)
    app.router.add_route("*", "/close", generate.close)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_post("/upload", upload)
    app.router.add_put("/upload", upload)
    app.router.add_route("*", "/{tail:.*}", echo)  # last: every other path and method
    return app
