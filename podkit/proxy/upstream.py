"""Upstreams: an address and its pool of idle keep-alive connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic
from urllib.parse import urlsplit

from podkit.proxy.connection import Pool, UpstreamConnection, UpstreamError
from podkit.proxy.settings import ProxySettings

__all__ = ["Upstream", "UpstreamConnection", "UpstreamError", "parse_upstream_url"]


def parse_upstream_url(url: str) -> tuple[str, int, str]:
    """(host, port, unix path) from http://host:port or unix:/path."""
    if url.startswith("unix:"):
        path = url[5:]
        path = path[2:] if path.startswith("//") else path
        if not path.startswith("/"):
            raise ValueError(f"expected unix:/absolute/path, got {url!r}")
        return "", 0, path
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected http://host:port or unix:/path, got {url!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"an upstream is an address, without a path: {url!r}")
    return parts.hostname, parts.port or 80, ""


Dial = Callable[["Upstream"], Awaitable["UpstreamConnection"]]


async def dial(upstream: Upstream) -> UpstreamConnection:
    """A new connection to `upstream` (TCP or unix socket)."""
    loop = asyncio.get_running_loop()
    if upstream.path:
        _, conn = await loop.create_unix_connection(
            lambda: UpstreamConnection(upstream), upstream.path
        )
    else:
        _, conn = await loop.create_connection(
            lambda: UpstreamConnection(upstream), upstream.host, upstream.port
        )
    return conn


class Upstream(Pool):
    """One upstream address and its idle connections."""

    def __init__(self, url: str, settings: ProxySettings, dialer: Dial = dial) -> None:
        self.url = url
        self.host, self.port, self.path = parse_upstream_url(url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.addr = f"unix:{self.path}" if self.path else f"{host}:{self.port}"  # as nginx logs it
        self.settings = settings
        self.dialer = dialer  # how connections are opened (tests answer by hand)
        self.idle: list[UpstreamConnection] = []
        self.active = 0  # exchanges in flight (least_conn counts these)
        self._sweep: asyncio.TimerHandle | None = None
        # Hooks for a balancer's passive health checks; the sidecar leaves them as they are.
        self.on_failure: Callable[[Upstream, str], None] | None = None
        self.on_success: Callable[[Upstream, int, float], None] | None = None

    def __repr__(self) -> str:
        return f"Upstream({self.url})"

    def take_idle(self) -> UpstreamConnection | None:
        while self.idle:
            conn = self.idle.pop()  # the most recently used: the least likely to be stale
            if conn.usable():
                conn.idle_since = 0.0
                return conn
        return None

    def release(self, conn: UpstreamConnection) -> None:
        if len(self.idle) < self.settings.pool_size and conn.usable():
            self.idle.append(conn)
            conn.start_idle()
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(
                    self.settings.upstream_idle_timeout, self.sweep
                )
        else:
            conn.close()

    def sweep(self) -> None:
        """Close pooled connections idle for longer than upstream_idle_timeout; one timer per
        upstream while it pools any, not one per connection."""
        self._sweep = None
        limit = monotonic() - self.settings.upstream_idle_timeout
        for conn in [c for c in self.idle if c.idle_since < limit]:
            self.idle.remove(conn)
            conn.close()
        if self.idle:
            self._sweep = asyncio.get_running_loop().call_later(
                max(self.idle[0].idle_since - limit, 0.05), self.sweep
            )

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    async def connect(self) -> UpstreamConnection:
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                return await self.dialer(self)
        except TimeoutError as exc:
            raise UpstreamError("connect", f"connect to {self.url} timed out") from exc
        except OSError as exc:
            raise UpstreamError("connect", f"connect to {self.url} failed: {exc}") from exc

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in self.idle:
            conn.close()
        self.idle.clear()
