"""Liveness and readiness, as the admin endpoints report them.

/healthz answers 200 while the process serves at all. /readyz answers 200 only when the
service is up, not draining, and its own readiness check passes (for the proxies: the
upstream answers; for the adapter: always, since Redis being down is reported as redis_up 0).
The HTTP side is the server's: podkit.admin (aiohttp) or podkit.admin_http (the proxies).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

ReadinessCheck = Callable[[], Awaitable[str | None]]  # None when ready, else the reason


@dataclass
class Health:
    ready: bool = False
    check: ReadinessCheck | None = None

    async def not_ready(self) -> str | None:
        """None when ready, else why not."""
        if not self.ready:
            return "starting or shutting down"
        if self.check is not None:
            return await self.check()
        return None
