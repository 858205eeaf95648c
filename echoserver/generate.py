"""Responses made to order, for the proxies' tests: any status, n bytes, slow, drip, close."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from aiohttp import web

from podkit.options import OptionError, parse_bool

# /bytes/<n> sends this 64-byte line over and over: printable (curl shows it), and byte i is
# PATTERN[i % 64], so a client checks what it got without a copy of the whole.
PATTERN = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+\n"
CHUNK = PATTERN * 1024  # 64 KiB: a whole number of patterns, so every chunk starts aligned
MAX_BYTES = 10 * 1024**3
MAX_DELAY = 60.0
MAX_CHUNKS = 10_000
NO_BODY = frozenset({204, 205, 304})


def pattern_bytes(n: int) -> bytes:
    """The first n bytes /bytes/<n> sends (for tests and clients that check)."""
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message + "\n")


def _number(request: web.Request, name: str, default: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad_request(f"{name} must be a number, got {raw!r}") from None
    if not 0 <= value <= high:
        raise _bad_request(f"{name} must be between 0 and {high:g}, got {raw!r}")
    return value


def _whole(text: str, what: str, high: int) -> int:
    if not text.isdigit() or int(text) > high:
        raise _bad_request(f"{what} must be a whole number from 0 to {high}, got {text!r}")
    return int(text)


async def status(request: web.Request) -> web.Response:
    """/status/<code>: that status; 204, 205 and 304 with no body, others a short text."""
    raw = request.match_info["code"]
    code = int(raw) if raw.isdigit() else 0
    if not 200 <= code <= 599:
        raise _bad_request(f"status must be a code from 200 to 599, got {raw!r}")
    if code in NO_BODY:
        return web.Response(status=code)
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = ""
    return web.Response(status=code, text=f"{code} {reason}".rstrip() + "\n")


async def some_bytes(request: web.Request) -> web.StreamResponse:
    """/bytes/<n>: n bytes of PATTERN, streamed in 64 KiB writes (?chunked=1: chunked)."""
    n = _whole(request.match_info["n"], "the byte count", MAX_BYTES)
    try:
        chunked = parse_bool(request.query.get("chunked", "0"))
    except OptionError as exc:
        raise _bad_request(f"chunked: {exc}") from None
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = n
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    view = memoryview(CHUNK)
    left = n
    while left > 0:
        size = min(left, len(CHUNK))
        await response.write(view[:size])  # waits while the client is slower than we are
        left -= size
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.Response:
    """/slow?delay=<seconds>: sleep (at most 60 s), then answer."""
    delay = _number(request, "delay", 1.0, MAX_DELAY)
    await asyncio.sleep(delay)
    return web.Response(text=f"slept {delay:g}s\n")


async def drip(request: web.Request) -> web.StreamResponse:
    """/drip?chunks=N&interval=S: a chunked response of N small chunks, S seconds apart."""
    chunks = int(_number(request, "chunks", 10, MAX_CHUNKS))
    interval = _number(request, "interval", 0.5, MAX_DELAY)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for i in range(1, chunks + 1):
        if i > 1:
            await asyncio.sleep(interval)
        await response.write(f"chunk {i}/{chunks}\n".encode())
    await response.write_eof()
    return response


async def close(_request: web.Request) -> web.Response:
    """/close: answer with Connection: close, then close the connection."""
    response = web.Response(text="closing the connection\n")
    response.force_close()
    return response
