"""Push mode's repository: --push-dir is the work tree, the Git directory lives under --root
(`<root>/push.git`) so the main container sees only its own files.

One `cycle()` fetches --branch, commits what changed under --push-dir (git add -A: .gitignore
honoured, deletions and renames included; files above --max-file-size left out), puts the
commit on top of the remote's tip when the remote moved (merge.py), and pushes. Every step
is one git command that either happened or did not, and the truth is the work tree against
the remote: after a crash or kill -9 the next cycle finds whatever is not on the remote and
sends it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from gitsync import merge
from gitsync.config import GitSyncConfig
from gitsync.git import Git, GitError, pushed_bytes
from gitsync.metrics import Metrics

log = logging.getLogger(__name__)

PUSH_RETRIES = 3  # the remote moving again between our fetch and our push


@dataclass
class CycleResult:
    committed: bool = False
    pushed: bool = False


class Workdir:
    def __init__(self, config: GitSyncConfig, git: Git, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.work_tree = Path(config.push_dir).absolute()
        self.git_dir = Path(config.root).absolute() / "push.git"
        self.branch = config.branch
        self.tracking = f"refs/remotes/origin/{self.branch}"
        self.git = git.with_env(GIT_DIR=str(self.git_dir), GIT_WORK_TREE=str(self.work_tree),
                                GIT_LITERAL_PATHSPECS="1")
        name, email = config.committer
        self.identity = {
            "GIT_AUTHOR_NAME": config.author_name, "GIT_AUTHOR_EMAIL": config.author_email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
        }
        self._refused: dict[str, tuple[int, int]] = {}  # path -> (size, mtime) already told
        self.pending = 0

    def set_pending(self, count: int) -> None:
        self.pending = count
        self.metrics.pending.set(count)

    # ---- start ------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Open the repository, repairing what a kill -9 can leave behind; create it if new."""
        self.work_tree.mkdir(parents=True, exist_ok=True)
        if self.git_dir.is_dir():
            for lock in self.git_dir.rglob("*.lock"):  # we are the only writer
                log.warning("removing %s left by an interrupted git", lock)
                lock.unlink(missing_ok=True)
            try:
                await self.git.run("fsck", "--connectivity-only", "--no-progress", "--no-dangling")
                await self.git.run("ls-files", "--cached", "-z")
            except GitError as exc:
                broken = self.git_dir.with_name(f"push.git.broken-{int(time.time())}")
                log.error("repository unusable (%s): moved to %s, starting over", exc, broken)
                self.git_dir.rename(broken)
        if not self.git_dir.is_dir():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True)
            await self.git.run("init", "--quiet", f"--initial-branch={self.branch}")
            await self.git.run("config", "core.bare", "false")
            await self.git.run("config", "gc.autoDetach", "false")
        await self.git.run("config", "remote.origin.url", self.config.repo)
        await self.git.run("config", "--replace-all", "remote.origin.fetch",
                           f"+refs/heads/{self.branch}:{self.tracking}")
        await self.git.run("symbolic-ref", "HEAD", f"refs/heads/{self.branch}")

    # ---- one cycle --------------------------------------------------------------------------
    async def cycle(self) -> CycleResult:
        result = CycleResult()
        if not await self._seeded():
            await self.seed(await self.fetch())
        # Committed locally first: a remote that is down does not hold changes in the air.
        result.committed = await self.commit()
        await self._count_pending(await self.rev(self.tracking))
        for _attempt in range(PUSH_RETRIES):
            remote = await self.fetch()
            head = await self.rev("HEAD")
            if head is not None and remote is not None and head != remote \
                    and not await self.is_ancestor(remote, head):
                await merge.onto_remote(self, head, remote)
                head = await self.rev("HEAD")
            if head is None or head == remote:
                self.set_pending(0)
                return result
            await self._count_pending(remote)
            if await self.push():
                result.pushed = True
                self.set_pending(0)
                return result
        raise GitError("push", 1, "the remote kept moving during the push", "rejected")

    async def fetch(self) -> str | None:
        """The remote branch's tip, or None when the branch does not exist (yet)."""
        try:
            await self.git.run("fetch", "--quiet", "--no-progress", "--no-auto-gc", "origin")
        except GitError as exc:
            if "couldn't find remote ref" not in exc.stderr:
                raise
            await self.git.run("update-ref", "-d", self.tracking)
            return None
        finally:
            self.metrics.fetches.inc()
        return await self.rev(self.tracking)

    async def _seeded(self) -> bool:
        out = await self.git.run("config", "--get", "gitsync.seeded", ok=(0, 1))
        return out.text.strip() == "true"

    async def seed(self, remote: str | None) -> None:
        """First start: the remote's files join --push-dir; nothing is deleted from either.
        (A fresh --push-dir is not taken as "delete everything on the remote".)"""
        if remote is not None:
            await self.git.run("update-ref", f"refs/heads/{self.branch}", remote)
            await self.git.run("read-tree", remote)
            missing = (await self.git.run("ls-files", "-z", "--deleted")).stdout
            if missing:
                await self.git.run("checkout-index", "--quiet", "-z", "--stdin", input=missing)
                log.info("seeded %s with %d file(s) from the remote",
                         self.work_tree, missing.count(b"\0"))
        await self.git.run("config", "gitsync.seeded", "true")

    async def stage(self) -> int:
        """git add what changed, except files above --max-file-size. Returns paths staged."""
        out = await self.git.run("ls-files", "-z", "--others", "--modified", "--exclude-standard")
        accepted: list[bytes] = []
        for raw in dict.fromkeys(out.stdout.split(b"\0")):
            if not raw or raw.endswith(b"/"):  # a nested repository: not ours to commit
                continue
            try:
                st = (self.work_tree / os.fsdecode(raw)).lstat()
            except FileNotFoundError:
                accepted.append(raw)  # a deletion
                continue
            if st.st_size > self.config.max_file_size:
                self._refuse(os.fsdecode(raw), st.st_size, st.st_mtime_ns)
                continue
            accepted.append(raw)
        if accepted:
            await self.git.run("add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul",
                               input=b"\0".join(accepted) + b"\0")
        return len(accepted)

    def _refuse(self, path: str, size: int, mtime: int) -> None:
        if self._refused.get(path) == (size, mtime):
            return  # told already
        self._refused[path] = (size, mtime)
        self.metrics.refused.inc()
        log.warning("not committing %s: %d bytes is above --max-file-size %d",
                    path, size, self.config.max_file_size)

    async def commit(self) -> bool:
        await self.stage()
        head = await self.rev("HEAD")
        base = head or merge.EMPTY_TREE
        diff = await self.git.run("diff", "--cached", "--quiet", base, ok=(0, 1))
        if diff.code == 0:
            return False
        status = await self.git.run("diff", "--cached", "--name-status", "-z", "-M", base)
        message = self.message(status.stdout)
        await self.git.run("commit", "--quiet", "--no-verify", "-m", message, env=self.identity)
        self.metrics.commits.inc()
        log.info("committed: %s", message.splitlines()[0])
        return True

    def message(self, name_status: bytes) -> str:
        fields = [f for f in name_status.split(b"\0") if f]
        counts = {"A": 0, "M": 0, "D": 0}
        files: list[str] = []
        i = 0
        while i < len(fields):
            letter = fields[i][:1].decode()
            paths = 2 if letter in ("R", "C") else 1
            files.append(os.fsdecode(fields[i + paths]))
            key = "M" if letter in ("R", "C", "T") else letter
            counts[key] = counts.get(key, 0) + 1
            i += 1 + paths
        return self.config.commit_message.format(
            count=len(files), added=counts["A"], modified=counts["M"], deleted=counts["D"],
            files=", ".join(files[:20]) + (" ..." if len(files) > 20 else ""),
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            hostname=socket.gethostname(),
        )

    async def push(self, ref: str = "HEAD", branch: str | None = None) -> bool:
        """Push; False when the remote moved meanwhile (fetch and try again)."""
        target = f"refs/heads/{branch or self.branch}"
        try:
            done = await self.git.run("push", "--progress", "--no-verify", "origin",
                                      f"{ref}:{target}")
        except GitError as exc:
            if "[rejected]" in exc.stderr and ("fetch first" in exc.stderr
                                               or "non-fast-forward" in exc.stderr):
                return False
            raise
        self.metrics.pushed_bytes.inc(pushed_bytes(done.stderr))
        log.info("pushed %s to %s", ref, target)
        return True

    async def _count_pending(self, remote: str | None) -> None:
        out = await self.git.run("diff", "--name-only", "-z", remote or merge.EMPTY_TREE, "HEAD")
        self.set_pending(out.stdout.count(b"\0"))

    # ---- small queries ----------------------------------------------------------------------
    async def rev(self, ref: str) -> str | None:
        out = await self.git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                                 ok=(0, 1, 128))
        return out.text.strip() if out.code == 0 else None

    async def is_ancestor(self, older: str, newer: str) -> bool:
        out = await self.git.run("merge-base", "--is-ancestor", older, newer, ok=(0, 1))
        return out.code == 0
