"""gitsync as a process: the admin port (/healthz, /readyz, /metrics), the mode's loop, and
the drain on SIGTERM (readiness false, then the loop's last word, bounded).

/readyz is ready once a sync succeeded and stays ready while the last success is younger
than --ready-max-age (default 3 x --period + --sync-timeout: one slow sync plus a couple of
missed periods do not flap it; a remote or credentials broken for longer do).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web
from prometheus_client import CollectorRegistry

from gitsync.auth import Auth
from gitsync.config import GitSyncConfig
from gitsync.git import Git
from gitsync.metrics import Metrics
from gitsync.pull import Puller
from gitsync.push import Pusher
from podkit.admin import add_health_routes, admin_app, readyz_handler, start_site
from podkit.health import Health

log = logging.getLogger(__name__)


def readiness(config: GitSyncConfig, metrics: Metrics) -> Health:
    async def check() -> str | None:
        if not metrics.last_success_at:
            return "no successful sync yet"
        age = time.monotonic() - metrics.last_success_at
        if age > config.readiness_bound:
            return f"last successful sync {age:.0f}s ago (bound {config.readiness_bound:.0f}s)"
        return None

    return Health(ready=False, check=check)


def make_admin(config: GitSyncConfig, health: Health, registry: CollectorRegistry
               ) -> web.Application:
    if config.http_metrics:
        app = admin_app(health, registry)
    else:
        app = web.Application()
        add_health_routes(app, health)
    # git-sync's probe path: 5xx until the first sync, then 200 (the same check as /readyz).
    app.router.add_get("/", readyz_handler(health))
    return app


async def run(config: GitSyncConfig, stop: asyncio.Event | None = None,
              registry: CollectorRegistry | None = None) -> int:
    """Run until the loop ends (--one-time, too many failures) or SIGTERM; the exit status."""
    stop = stop or asyncio.Event()
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    health = readiness(config, metrics)
    git = Git(config.git, Auth.from_config(config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    runner: web.AppRunner | None = None
    if config.http_bind is not None:
        host, port = config.http_bind
        runner = await start_site(make_admin(config, health, registry), host, port)
        log.info("admin endpoint on http://%s:%d", host, port)
    health.ready = True  # the check decides; "ready" here means not draining
    worker: Puller | Pusher = Puller(config, git, metrics) if config.mode == "pull" \
        else Pusher(config, git, metrics)
    task = asyncio.create_task(worker.run(stop), name=f"gitsync-{config.mode}")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            health.ready = False
            log.info("shutting down: up to %.1fs for the %s loop", config.shutdown_timeout,
                     config.mode)
            await asyncio.wait({task}, timeout=config.shutdown_timeout)
        if not task.done():
            log.warning("the %s loop did not finish in time: cancelled", config.mode)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return 0
        return task.result()
    finally:
        stopping.cancel()
        health.ready = False
        if isinstance(worker, Puller):
            await worker.close()
        if runner is not None:
            await runner.cleanup()
        log.info("stopped")
