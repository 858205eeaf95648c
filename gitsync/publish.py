"""Publishing a revision the way git-sync v4 lays out --root: each hash checked out into its
own worktree, `<root>/.worktrees/<hash>`, and --link swapped to it in one rename.

A reader of --link sees the old tree or the new one, never a mix: the new worktree is
complete before the link moves, the link is replaced by rename(2) (atomic on one
filesystem), and it is relative (`.worktrees/<hash>`) so it resolves the same in every
container that mounts the volume, wherever it is mounted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path

from gitsync.git import Git

log = logging.getLogger(__name__)

WORKTREES = ".worktrees"


def worktree_for(root: Path, hash_: str) -> Path:
    return root / WORKTREES / hash_


def current_target(link: Path) -> Path | None:
    """The worktree --link points at, or None when there is no link yet."""
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    path = Path(target)
    return path if path.is_absolute() else (link.parent / path)


def current_hash(link: Path) -> str:
    target = current_target(link)
    return target.name if target is not None else ""


def swap_link(link: Path, target: Path) -> None:
    """Point `link` at `target` atomically: a new symlink, then rename over the old one."""
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, link.parent)
    tmp = link.parent / f".{link.name}.gitsync-tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(relative, tmp)
    os.replace(tmp, link)
    # The rename is durable once the directory is synced (a node crash keeps one or the other).
    fd = os.open(link.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def worktree_ok(git: Git, path: Path, hash_: str) -> bool:
    """The worktree exists and is checked out at `hash_` (git-sync's sanity check)."""
    try:  # a missing directory fails to start git: also "not ok"
        return await git.out("rev-parse", "HEAD", cwd=path) == hash_
    except Exception:
        return False


async def add_worktree(git: Git, root: Path, hash_: str) -> Path:
    """Check `hash_` out into its own worktree; a half-made one from a crash is redone."""
    path = worktree_for(root, hash_)
    if path.exists():
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
    await git.run("worktree", "prune", cwd=root)
    await git.run("worktree", "add", "--quiet", "--detach", "--force", str(path), hash_, cwd=root)
    return path


async def remove_stale(git: Git, root: Path, keep: Path | None, keep_for: float) -> list[str]:
    """Remove worktrees other than `keep` that have been stale for `keep_for` seconds."""
    removed: list[str] = []
    base = root / WORKTREES
    now = time.time()
    entries = list(base.iterdir()) if base.is_dir() else []
    for entry in entries:
        if keep is not None and entry.name == keep.name:
            continue
        try:
            if keep_for and entry.lstat().st_mtime + keep_for > now:
                continue
        except FileNotFoundError:
            continue
        await asyncio.to_thread(shutil.rmtree, entry, ignore_errors=True)
        removed.append(entry.name)
    if removed:
        await git.run("worktree", "prune", cwd=root)
        log.debug("removed stale worktrees %s", ", ".join(removed))
    return removed


def mark_stale(path: Path | None) -> None:
    """Start the --stale-worktree-timeout clock of a worktree that is no longer current."""
    if path is not None and path.is_dir():
        os.utime(path)
