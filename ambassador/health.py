"""Active health checks (what nginx open source lacks): GET a path on every peer each
interval (in tcp mode: open a TCP connection and close it, as nginx Plus' stream
`health_check` and HAProxy's `check` do); `fall` failures in a row take a peer out, `rise`
passes bring it back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ambassador.balancer import Peer

log = logging.getLogger(__name__)


async def probe(peer: Peer, path: str, timeout: float) -> str | None:  # noqa: ASYNC109
    """None when the peer answers the path with a 2xx or 3xx; else what went wrong."""
    up = peer.upstream
    try:
        async with asyncio.timeout(timeout):
            if up.path:
                reader, writer = await asyncio.open_unix_connection(up.path)
            else:
                reader, writer = await asyncio.open_connection(up.host, up.port)
            try:
                host = up.host or "localhost"
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                    "User-Agent: pod-patterns-ambassador-health-check\r\n\r\n".encode()
                )
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return f"not an HTTP response: {status_line[:60]!r}"
    status = int(parts[1])
    return None if 200 <= status < 400 else f"status {status}"


async def connect_probe(peer: Peer, _path: str, timeout: float) -> str | None:  # noqa: ASYNC109
    """tcp mode: None when the peer accepts a connection within `timeout`."""
    up = peer.upstream
    try:
        async with asyncio.timeout(timeout):
            if up.path:
                _, writer = await asyncio.open_unix_connection(up.path)
            else:
                _, writer = await asyncio.open_connection(up.host, up.port)
        writer.close()
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


Probe = Callable[[Peer, str, float], Awaitable[str | None]]


class HealthChecker:
    def __init__(
        self,
        peers: Callable[[], list[Peer]],
        path: str,
        interval: float,
        timeout: float,
        rise: int,
        fall: int,
        check: Probe = probe,
    ) -> None:
        self.peers = peers
        self.check = check
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
        self.streak: dict[int, int] = {}  # id(peer) → passes (>0) or failures (<0) in a row

    async def run(self) -> None:
        while True:
            peers = self.peers()
            results = await asyncio.gather(*(self.check(p, self.path, self.timeout) for p in peers))
            for peer, problem in zip(peers, results, strict=True):
                self.record(peer, problem)
            await asyncio.sleep(self.interval)

    def record(self, peer: Peer, problem: str | None) -> None:
        streak = self.streak.get(id(peer), 0)
        if problem is None:
            streak = streak + 1 if streak > 0 else 1
            if not peer.healthy and streak >= self.rise:
                peer.healthy = True
                peer.start_slow(time.monotonic())
                log.info(
                    "upstream %s (%s) passed %d checks: back in",
                    peer.name,
                    peer.upstream.url,
                    streak,
                )
        else:
            streak = streak - 1 if streak < 0 else -1
            if peer.healthy and -streak >= self.fall:
                peer.healthy = False
                log.warning(
                    "upstream %s (%s) failed %d checks (%s): taken out",
                    peer.name,
                    peer.upstream.url,
                    -streak,
                    problem,
                )
        self.streak[id(peer)] = streak
