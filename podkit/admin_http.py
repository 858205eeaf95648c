"""A small HTTP/1.1 server for the proxies' own ports: the admin port (/healthz, /readyz,
/metrics, /upstreams) and the sidecar's plain-HTTP redirect listener.

The proxies are built to stay small, and a web framework is most of a proxy's memory
(aiohttp alone adds ~17 MB of RSS). Probes and scrapes need little: a request line and
headers parsed by httptools (already the engine's parser), a handler per path, keep-alive,
and clear refusals for anything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

from podkit.exposition import CONTENT_TYPE
from podkit.health import Health

log = logging.getLogger(__name__)

MAX_HEAD = 8192  # a probe's or a scrape's head is a few hundred bytes
MAX_BODY = 65536  # a write's JSON body (the ambassador's PATCH /upstreams)
IDLE_TIMEOUT = 75.0  # an idle kept connection is closed after this (Prometheus keeps them)
PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent: path and query
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes = b""
    peer: str = ""  # the client's address

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = PLAIN
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str, **headers: str) -> Response:
        return cls(status, text.encode(), PLAIN, headers)


Handler = Callable[[Request], Awaitable[Response]]
REASONS = {
    200: "OK",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def encode(response: Response, head_only: bool, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{name}: {value}" for name, value in response.headers.items()),
    ]
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


class AdminServer:
    """Serves `routes` (path → handler, GET and HEAD), `writes` (path → handler of every
    other method) or, with `fallback`, every request."""

    def __init__(
        self,
        routes: dict[str, Handler],
        fallback: Handler | None = None,
        writes: dict[str, Handler] | None = None,
    ) -> None:
        self.routes = routes
        self.fallback = fallback
        self.writes = writes or {}
        self.connections: set[AdminConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AdminConnection(self), host, port, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def answer(self, request: Request) -> Response:
        if self.fallback is not None:
            return await self.fallback(request)
        handler = self.routes.get(request.path)
        write = self.writes.get(request.path)
        if handler is None and write is None:
            return Response.text(404, f"no such path: {request.path}\n")
        if request.method not in ("GET", "HEAD"):
            if write is not None:
                return await write(request)
            return Response.text(405, "only GET and HEAD\n", Allow="GET, HEAD")
        if handler is None:
            return Response.text(405, "writes only\n")
        return await handler(request)


class AdminConnection(asyncio.Protocol):
    """One client connection: requests answered in order, one at a time."""

    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: list[tuple[Request, bool]] = []  # parsed, not yet answered
        self.busy = False
        self.in_head = False
        self.size = 0
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers: dict[str, str] = {}
        self._idle: asyncio.TimerHandle | None = None
        self._answering: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "upgrades are not served here\n")
        except httptools.HttpParserError as exc:
            log.warning("admin port: malformed request: %s", exc)
            self._refuse(400, "malformed request\n")
        else:
            if self.in_head:  # a head still coming: count what it has taken so far
                self.size += len(data)
                if self.size > MAX_HEAD:
                    self._refuse(431, "request head too large\n")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self.size, self.in_head = b"", {}, 0, True
        self._body, self._body_size = [], 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            self._refuse(413, "request body too large\n")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        method = self.parser.get_method().decode("latin-1")
        peername = self.transport.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) else ""
        request = Request(
            method, self._url.decode("latin-1"), self._headers, b"".join(self._body), peer
        )
        self.pending.append((request, self.parser.should_keep_alive()))
        if not self.busy:
            self._answering = asyncio.ensure_future(self._answer_all())

    async def _answer_all(self) -> None:
        self.busy = True
        if self._idle is not None:
            self._idle.cancel()
        while self.pending and self.transport is not None:
            request, keep_alive = self.pending.pop(0)
            try:
                response = await self.server.answer(request)
            except Exception:
                log.exception("admin port: %s %s failed", request.method, request.target)
                response = Response.text(500, "internal error\n")
            if self.transport is None:
                break
            self.transport.write(encode(response, request.method == "HEAD", keep_alive))
            if not keep_alive:
                self.close()
        self.busy = False
        self._arm_idle()

    def _refuse(self, status: int, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode(Response.text(status, text), False, False))
        self.close()

    def _arm_idle(self) -> None:
        if self.transport is not None:
            self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def admin_routes(health: Health, metrics: Callable[[], bytes]) -> dict[str, Handler]:
    """/healthz, /readyz and /metrics: what every proxy serves on its admin port. `metrics`
    renders the exposition text of one scrape."""

    async def healthz(_request: Request) -> Response:
        return Response.text(200, "ok\n")

    async def readyz(_request: Request) -> Response:
        reason = await health.not_ready()
        if reason is not None:
            return Response.text(503, f"not ready: {reason}\n")
        return Response.text(200, "ok\n")

    async def scrape(_request: Request) -> Response:
        return Response(200, metrics(), CONTENT_TYPE)

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": scrape}
