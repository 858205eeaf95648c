"""git-sync's hooks after a new hash is published: --exechook-command and --webhook-url.

As in git-sync: asynchronous to the sync loop, retried after a backoff until they succeed,
and when a newer hash arrives during a retry the newer one is what gets announced.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiohttp

from gitsync.config import GitSyncConfig

log = logging.getLogger(__name__)


class Hooks:
    def __init__(self, config: GitSyncConfig) -> None:
        self.config = config
        self._latest: tuple[str, Path] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.exechook_command or self.config.webhook_url)

    def notify(self, hash_: str, worktree: Path) -> None:
        if not self.enabled:
            return
        self._latest = (hash_, worktree)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="gitsync-hooks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            assert self._latest is not None
            hash_, worktree = self._latest
            ok = True
            if self.config.exechook_command:
                ok = await self._exec(hash_, worktree) and ok
            if self.config.webhook_url:
                ok = await self._webhook(hash_) and ok
            if not ok:
                backoff = max(self.config.exechook_backoff, self.config.webhook_backoff)
                await asyncio.sleep(backoff)
                self._wake.set()  # retry, with whatever hash is newest by then

    async def _exec(self, hash_: str, worktree: Path) -> bool:
        command = self.config.exechook_command
        try:
            proc = await asyncio.create_subprocess_exec(
                command,
                cwd=worktree,
                env={**os.environ, "GITSYNC_HASH": hash_},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            log.error("exechook %s cannot start: %s", command, exc)
            return False
        try:
            async with asyncio.timeout(self.config.exechook_timeout):
                output, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("exechook %s timed out after %.1fs", command, self.config.exechook_timeout)
            return False
        if proc.returncode != 0:
            log.error("exechook %s failed (exit %s): %s", command, proc.returncode,
                      output.decode(errors="replace").strip()[-500:])
            return False
        log.info("exechook ran for %s", hash_)
        return True

    async def _webhook(self, hash_: str) -> bool:
        config = self.config
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                config.webhook_method, config.webhook_url, headers={"Gitsync-Hash": hash_}
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("webhook %s failed: %s", config.webhook_method, type(exc).__name__)
            return False
        if config.webhook_success_status and status != config.webhook_success_status:
            log.error("webhook answered %d, expected %d", status, config.webhook_success_status)
            return False
        log.info("webhook called for %s (%d)", hash_, status)
        return True
