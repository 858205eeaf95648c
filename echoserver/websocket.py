"""/ws: a WebSocket echo, text and binary; open sockets are closed first on shutdown."""

from __future__ import annotations

from aiohttp import WSCloseCode, WSMsgType, web

SOCKETS = web.AppKey("websockets", set[web.WebSocketResponse])


async def ws_echo(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    try:
        ready = ws.can_prepare(request).ok
    except ValueError:  # aiohttp's handshake check chokes on a non-ASCII Sec-WebSocket-Key
        raise web.HTTPBadRequest(text="invalid Sec-WebSocket-Key\n") from None
    if not ready:
        return web.Response(status=426, text="/ws is a WebSocket echo: send an Upgrade request\n")
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
    finally:
        sockets.discard(ws)
    return ws


async def close_sockets(app: web.Application) -> None:
    """On shutdown: a WebSocket never ends on its own, so the drain would wait out its bound."""
    sockets = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_websocket_route(app: web.Application) -> None:
    app[SOCKETS] = set()
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/ws", ws_echo)
