"""The process lifecycle: event loop choice, signals, and a bounded graceful shutdown.

SIGTERM/SIGINT → readiness false → stop listening → let in-flight requests finish →
cancel what is left at the bound → close long-lived clients (aiohttp cleanup contexts).
The default bound (10 s) sits well below Kubernetes' 30 s termination grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from podkit.health import Health
from podkit.memory import trim_forever

if TYPE_CHECKING:  # imported where it runs: the proxies use this module without aiohttp
    from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 10.0


def install_fast_loop() -> str:
    """Use uvloop when it is installed; plain asyncio otherwise. Returns the loop's name."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (the proxies run their own listeners, not serve_app)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve_app(
    app: web.Application,
    host: str,
    port: int,
    *,
    health: Health,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    stop: asyncio.Event | None = None,
    on_started: Callable[[], Awaitable[None]] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run `app` on host:port until SIGTERM/SIGINT (or `stop` is set), then drain."""
    from aiohttp import web

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    trimmer = asyncio.ensure_future(trim_forever())  # freed pages back to the kernel
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        health.ready = True
        log.info("listening on %s", _where(runner))
        if on_started is not None:
            await on_started()
        await stop.wait()
        health.ready = False
        log.info("shutting down: draining for up to %.1fs", shutdown_timeout)
    finally:
        trimmer.cancel()
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
    log.info("stopped")


def _where(runner: web.AppRunner) -> str:
    return ", ".join(
        f"http://{a[0]}:{a[1]}" if isinstance(a, tuple) else str(a) for a in runner.addresses
    )
