"""The echo: a request as it arrived, as plain text for people or JSON for tests.

Headers come from the parser's raw list, so their order, case and repeats are the client's
(or the proxy's). The body is read as it streams in and only counted and hashed, so a body
of any size passes through in constant memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import StreamReader, web

from echoserver.page import page, wants_html

JSON_TYPE = "application/json"
SERVER_NAME = web.AppKey("server_name", str)


@dataclass(frozen=True)
class Body:
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"body_bytes": self.size, "body_sha256": self.sha256}


@dataclass(frozen=True)
class Echo:
    server: str
    method: str
    path: str
    query: str
    http_version: str
    client: str
    headers: list[tuple[str, str]]
    body: Body

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "http_version": self.http_version,
            "client": self.client,
            "headers": [list(pair) for pair in self.headers],
            **self.body.as_dict(),
        }

    def as_text(self, with_body: bool) -> str:
        target = f"{self.path}?{self.query}" if self.query else self.path
        lines = [
            f"server: {self.server}",
            f"{self.method} {target} HTTP/{self.http_version}",
            f"client: {self.client}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        if with_body:
            lines += ["", f"body: {self.body.size} bytes, sha256 {self.body.sha256}"]
        return "\n".join(lines) + "\n"


async def read_body(content: StreamReader) -> Body:
    """Count and hash the body as it arrives; nothing of it is kept."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return Body(size, digest.hexdigest())


def _text(raw: bytes) -> str:
    # Bytes that are not UTF-8 are shown as \xNN, not dropped or guessed at.
    return raw.decode("utf-8", "backslashreplace")


def client_address(request: web.Request) -> str:
    """ip:port of the peer as this server sees it ([v6]:port for IPv6)."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not isinstance(peer, tuple) or len(peer) < 2:
        return "unknown"
    host, port = str(peer[0]), peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def describe(request: web.Request, server: str) -> Echo:
    path, _, query = request.raw_path.partition("?")
    return Echo(
        server=server,
        method=request.method,
        path=path,
        query=query,
        http_version=f"{request.version.major}.{request.version.minor}",
        client=client_address(request),
        headers=[(_text(name), _text(value)) for name, value in request.raw_headers],
        body=await read_body(request.content),
    )


def wants_json(request: web.Request) -> bool:
    fmt = request.query.get("format")
    if fmt is not None:
        return fmt.lower() == "json"
    return JSON_TYPE in request.headers.get("Accept", "")


def json_response(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data) + "\n", content_type=JSON_TYPE)


async def echo(request: web.Request) -> web.Response:
    """Any path, any method: the request as received, in text or (when asked) JSON."""
    seen = await describe(request, request.app[SERVER_NAME])
    if wants_json(request):
        return json_response(seen.as_dict())
    if wants_html(request):
        return page(seen.server, f"{seen.method} {seen.path}", seen.as_text(with_body=False))
    return web.Response(text=seen.as_text(with_body=request.body_exists))


async def upload(request: web.Request) -> web.Response:
    """POST/PUT /upload: the body streamed through, answered with its size and SHA-256."""
    return json_response((await read_body(request.content)).as_dict())
