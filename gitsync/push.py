"""Push mode's loop: wait for writes under --push-dir to settle (--debounce), then run a
cycle (workdir.py); also every --period, which checks the remote and retries a failed push.

It never exits on a failure (a restarted sidecar would find the same server down): it
retries, and says so in the log, the metrics and /readyz. On SIGTERM a last cycle sends
what is pending, within --shutdown-timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from gitsync.config import GitSyncConfig
from gitsync.git import Git, GitError
from gitsync.metrics import Metrics
from gitsync.watch import Watcher, make_watcher
from gitsync.workdir import Workdir

log = logging.getLogger(__name__)


class Debounce:
    """Tracks writes: `due()` says how long until they have been quiet for `quiet` seconds
    (or `cap` seconds since the first unsettled write, so endless writes still commit)."""

    def __init__(self, quiet: float, cap: float) -> None:
        self.quiet, self.cap = quiet, cap
        self.first: float | None = None
        self.last = 0.0
        self.event = asyncio.Event()

    def changed(self) -> None:
        now = time.monotonic()
        self.last = now
        if self.first is None:
            self.first = now
        self.event.set()

    def due(self) -> float:
        if self.first is None:
            return 0.0
        now = time.monotonic()
        return max(0.0, min(self.last + self.quiet - now, self.first + self.cap - now))

    def reset(self) -> None:
        self.first = None
        self.event.clear()


class Pusher:
    def __init__(self, config: GitSyncConfig, git: Git, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.workdir = Workdir(config, git, metrics)
        self.debounce = Debounce(config.debounce, max(config.debounce_max, config.debounce))
        self.watcher: Watcher | None = None

    async def run(self, stop: asyncio.Event) -> int:
        try:
            await self.workdir.prepare()
        except (GitError, OSError) as exc:
            log.error("cannot prepare the repository under %s: %s", self.config.root, exc)
            return 1
        self.watcher = make_watcher(Path(self.config.push_dir), self.debounce.changed,
                                    self.config.watch, self.config.poll_interval)
        self.watcher.start()
        try:
            await self._sync()  # at once: whatever a previous run left unpushed goes now
            while not stop.is_set():
                await self._wait(stop)
                if stop.is_set():
                    break
                await self._sync()
        finally:
            self.watcher.close()
        if self.debounce.first is not None or self.workdir.pending:
            log.info("shutting down: a last sync of pending changes")
            await self._sync(self.config.shutdown_timeout)
        return 0

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until writes settled, or --period passed, or stop."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            changed = asyncio.ensure_future(self.debounce.event.wait())
            await asyncio.wait({stopped, changed}, timeout=self.config.period,
                               return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            while self.debounce.first is not None and not stop.is_set():
                delay = self.debounce.due()
                if delay <= 0:
                    break
                await asyncio.wait({stopped}, timeout=delay)
        finally:
            stopped.cancel()

    async def _sync(self, bound: float | None = None) -> None:
        self.debounce.reset()  # writes from now on are for the next cycle
        started = time.monotonic()
        status = "error"
        try:
            async with asyncio.timeout(bound or self.config.sync_timeout):
                result = await self.workdir.cycle()
            status = "success" if result.pushed or result.committed else "noop"
            self.metrics.success(status)
        except GitError as exc:
            self.metrics.failure(exc.kind)
            log.error("sync failed: %s", exc)
        except TimeoutError:
            self.metrics.failure("network")
            log.error("sync timed out after %.1fs", bound or self.config.sync_timeout)
        except OSError as exc:
            self.metrics.failure("other")
            log.error("sync failed: %s", exc)
        finally:
            self.metrics.duration.labels(status).observe(time.monotonic() - started)
