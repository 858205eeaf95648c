"""Pull mode, git-sync v4's loop: ask the remote what --ref is, fetch it when it moved,
publish it (publish.py), clean up, run the hooks, wait --period, again.

--root is itself a repository with no checkout; each hash gets a worktree under
`.worktrees/` and --link points at the current one, as in git-sync.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from pathlib import Path

from gitsync import publish
from gitsync.config import GitSyncConfig
from gitsync.git import Git, GitError
from gitsync.hooks import Hooks
from gitsync.metrics import Metrics

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-f]{4,64}")


def pick_hash(ls_remote: str, ref: str) -> str:
    """The commit `ref` names in `git ls-remote` output: a peeled tag (^{}) before the tag
    object, refs/heads/<ref> and refs/tags/<ref> before other refs that end the same."""
    found: dict[str, str] = {}
    for line in ls_remote.splitlines():
        hash_, _, name = line.partition("\t")
        if name:
            found[name] = hash_
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in found:
            return found[name]
    return ""


class Puller:
    def __init__(self, config: GitSyncConfig, git: Git, metrics: Metrics) -> None:
        self.config = config
        self.git = git
        self.metrics = metrics
        self.root = Path(config.root).absolute()
        self.link = config.link_path.absolute()
        self.hooks = Hooks(config)
        self.syncs = 0

    async def init_root(self) -> None:
        """--root becomes a repository: created, or emptied if it holds something else
        (git-sync's rule: it may be a mounted volume, so its contents go, not the dir)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / ".git").is_dir():
            try:
                await self.git.run("rev-parse", "--git-dir", cwd=self.root)
                return
            except GitError:
                log.warning("%s holds a broken repository: starting it over", self.root)
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                await asyncio.to_thread(shutil.rmtree, entry)
            else:
                entry.unlink()
        await self.git.run("init", "--quiet", cwd=self.root)

    async def remote_hash(self) -> str:
        ref = self.config.ref
        out = await self.git.out("ls-remote", "--quiet", self.config.repo, ref, cwd=self.root)
        hash_ = pick_hash(out, ref)
        if not hash_ and _HEX.fullmatch(ref):
            return ref  # a commit: fetched by hash (the server must allow it)
        if not hash_:
            raise GitError("ls-remote", 0, f"--ref {ref!r} not found on the remote", "other")
        return hash_

    async def fetch(self, hash_: str) -> str:
        ref = hash_ if _HEX.fullmatch(self.config.ref) else self.config.ref
        args = ["fetch", self.config.repo, ref, "--no-progress", "--prune", "--no-auto-gc"]
        if self.config.depth:
            args += ["--depth", str(self.config.depth)]
        elif (await self.git.out("rev-parse", "--is-shallow-repository", cwd=self.root)) == "true":
            args.append("--unshallow")
        await self.git.run(*args, cwd=self.root)
        self.metrics.fetches.inc()
        # The ref may have moved since ls-remote: what was fetched is what gets published.
        fetched = await self.git.out("rev-parse", "FETCH_HEAD^{commit}", cwd=self.root)
        # HEAD of --root follows, so the next fetch negotiates from it (as git-sync does).
        await self.git.run("reset", "--soft", "--quiet", fetched, cwd=self.root)
        return fetched

    async def sync_once(self) -> bool:
        """One sync; True when a new hash was published."""
        remote = await self.remote_hash()
        current = publish.current_target(self.link)
        changed = current is None or current.name != remote
        if not changed and self.syncs == 0:
            # At startup, trust the link only if its worktree is sound (git-sync does too).
            changed = not await publish.worktree_ok(self.git, current or self.root, remote)
        if changed:
            fetched = await self.fetch(remote)
            worktree = await publish.add_worktree(self.git, self.root, fetched)
            publish.swap_link(self.link, worktree)
            publish.mark_stale(current)
            log.info("updated %s to %s", self.link, fetched)
            await self._gc()
        target = publish.current_target(self.link)
        await publish.remove_stale(self.git, self.root, target,
                                   self.config.stale_worktree_timeout)
        if target is not None and (changed or self.syncs == 0):
            self.hooks.notify(target.name, target)
        self._touch()
        self.syncs += 1
        return changed

    async def _gc(self) -> None:
        mode = self.config.git_gc
        if mode == "off":
            return
        args = {"auto": ["gc", "--auto"], "always": ["gc"], "aggressive": ["gc", "--aggressive"]}
        try:
            await self.git.run(*args[mode], "--quiet", cwd=self.root)
        except GitError as exc:
            log.warning("%s", exc)

    def _touch(self) -> None:
        if self.config.touch_file:
            path = Path(self.config.touch_file)
            path = path if path.is_absolute() else self.root / path
            path.touch()

    async def run(self, stop: asyncio.Event) -> int:
        """Sync every --period until `stop`; the exit status (1: too many failures)."""
        failures = 0
        try:
            await self.init_root()
        except (GitError, OSError) as exc:
            log.error("cannot prepare --root %s: %s", self.root, exc)
            return 1
        while not stop.is_set():
            started = time.monotonic()
            status = "error"
            try:
                async with asyncio.timeout(self.config.sync_timeout):
                    status = "success" if await self.sync_once() else "noop"
                failures = 0
                self.metrics.success(status)
            except (GitError, OSError, TimeoutError) as exc:
                failures += 1
                kind = exc.kind if isinstance(exc, GitError) else (
                    "network" if isinstance(exc, TimeoutError) else "other")
                self.metrics.failure(kind)
                log.error("sync failed (%d in a row): %s", failures, exc)
                limit = self.config.max_failures
                if limit >= 0 and failures > limit:
                    log.error("too many failures (--max-failures %d): exiting", limit)
                    return 1
            finally:
                self.metrics.duration.labels(status).observe(time.monotonic() - started)
            if self.config.one_time and status != "error":
                return 0
            try:
                await asyncio.wait_for(stop.wait(), self.config.period)
            except TimeoutError:
                pass
        return 0

    async def close(self) -> None:
        await self.hooks.close()
