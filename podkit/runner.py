"""One runner for both proxies: start, ready, serve the admin port, drain, and workers.

A proxy service hands the runner a `ProxyApp`; everything the two proxies did alike lives
here once. With one worker, the process serves and answers the admin port itself. With
--workers N, N forked processes share the port (SO_REUSEPORT) and the parent keeps the
admin port for the set, from the counters the workers report (podkit.workers).

Signals: SIGTERM or SIGINT → unready → stop accepting → drain in-flight requests (bounded)
→ exit 0; a second one forces the exit at once (status 1). SIGHUP reloads (each worker
reloads its own). A worker that keeps dying while it starts makes the parent back off and,
after `GIVE_UP_AFTER` such deaths in a row, stop the rest and exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from podkit.health import Health
from podkit.lifecycle import install_fast_loop
from podkit.memory import trim_forever
from podkit.workers import WorkerFailure, Workers, report_forever

log = logging.getLogger(__name__)

Report = dict[str, Any]  # what one serving process reports: its counters and views
Reports = Callable[[], list[Report]]
Closer = Callable[[], Awaitable[None]]


class Serving(Protocol):
    """The client-facing part of one process: its listener(s) on the shared engine."""

    async def start(self, reuse_port: bool) -> None: ...
    async def drain(self) -> None: ...
    def report(self) -> Report: ...
    def reload(self) -> None: ...


class ProxyApp(Protocol):
    """What differs between the proxies; the runner does the rest."""

    workers: int
    drain_timeout: float

    def serving(self, in_worker: bool) -> Serving: ...
    async def start_admin(self, health: Health, reports: Reports) -> list[Closer]: ...
    async def readiness(self, reports: list[Report]) -> str | None: ...
    def describe(self) -> str: ...


def run(app: ProxyApp) -> int:
    """Run `app` until it is told to stop; the exit status."""
    install_fast_loop()
    if app.workers > 1:
        return asyncio.run(supervise(app))
    return asyncio.run(serve(app))


def on_signals(stop: asyncio.Event, reload: Callable[[], None], force: Callable[[], None]) -> None:
    """SIGTERM/SIGINT set `stop`, and a second one calls `force`; SIGHUP calls `reload`."""
    loop = asyncio.get_running_loop()

    def stop_or_force(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("second %s: exiting without waiting for the drain", sig.name)
            force()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_or_force, sig)
    loop.add_signal_handler(signal.SIGHUP, reload)


def exit_now() -> None:
    logging.shutdown()
    os._exit(1)


async def serve(app: ProxyApp, stop: asyncio.Event | None = None) -> int:
    """One process: the listener and the admin port together."""
    stop = stop or asyncio.Event()
    serving = app.serving(in_worker=False)
    on_signals(stop, serving.reload, exit_now)
    await serving.start(reuse_port=False)

    def reports() -> list[Report]:
        return [serving.report()]

    async def ready() -> str | None:
        return await app.readiness(reports())

    health = Health(check=ready)
    closers = await app.start_admin(health, reports)
    trimmer = asyncio.ensure_future(trim_forever())
    health.ready = True
    log.info("%s", app.describe())
    await stop.wait()
    trimmer.cancel()
    health.ready = False  # unready at once; then stop accepting and drain
    log.info("shutting down: draining for up to %.0fs", app.drain_timeout)
    await serving.drain()
    for close in closers:
        await close()
    log.info("stopped")
    return 0


def worker_main(app: ProxyApp) -> Callable[[int, int], int]:
    """What each forked worker runs: the listener on the shared port, reporting counters."""

    def main(index: int, report_fd: int) -> int:
        install_fast_loop()

        async def serve_worker() -> None:
            stop = asyncio.Event()
            serving = app.serving(in_worker=True)
            on_signals(stop, serving.reload, exit_now)
            await serving.start(reuse_port=True)
            reporter = asyncio.ensure_future(report_forever(report_fd, serving.report))
            trimmer = asyncio.ensure_future(trim_forever())
            await stop.wait()
            trimmer.cancel()
            await serving.drain()
            reporter.cancel()

        asyncio.run(serve_worker())
        return 0

    return main


async def supervise(app: ProxyApp, stop: asyncio.Event | None = None) -> int:
    """--workers N: fork the workers, serve the admin port for all of them."""
    stop = stop or asyncio.Event()
    workers = Workers(app.workers, worker_main(app))

    def force() -> None:
        workers.kill_all()
        exit_now()

    on_signals(stop, lambda: workers.signal_all(signal.SIGHUP), force)
    workers.start()
    supervisor = asyncio.ensure_future(workers.supervise())

    def reports() -> list[Report]:
        return list(workers.reports.values())

    async def ready() -> str | None:
        if not workers.alive():
            return "a worker is restarting"
        return await app.readiness(reports())

    health = Health(check=ready)
    closers = await app.start_admin(health, reports)
    health.ready = True
    log.info("%d workers: %s", app.workers, app.describe())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopping, supervisor], return_when=asyncio.FIRST_COMPLETED)
    health.ready = False
    status = 0
    if supervisor.done() and isinstance(supervisor.exception(), WorkerFailure):
        log.error("%s", supervisor.exception())
        status = 1
    else:
        log.info("shutting down: draining the workers for up to %.0fs", app.drain_timeout)
    supervisor.cancel()
    stopping.cancel()
    await workers.stop(app.drain_timeout + 2.0)
    for close in closers:
        await close()
    log.info("stopped")
    return status
