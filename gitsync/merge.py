"""Putting local commits on top of a remote that moved, without touching the work tree
until the result is known (`git merge-tree --write-tree`, Git 2.38+), so the main
container's files never sit in a half-rebased state.

Clean: one commit with the merged tree on top of the remote tip (a rebase of the local
changes, squashed). Conflict: the local state is pushed as it is to a side branch
(--conflict-branch-prefix + UTC time) so it is never lost; the branch then carries the
remote's version of each conflicting path plus the local changes that did not conflict,
and the pod's files follow it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitsync.git import GitError

if TYPE_CHECKING:
    from gitsync.workdir import Workdir

log = logging.getLogger(__name__)

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ZERO = "0" * 40


@dataclass(frozen=True)
class Conflicted:
    mode: str
    oid: str
    stage: int
    path: str


def parse_merge_tree(out: bytes) -> tuple[str, list[Conflicted]]:
    """`git merge-tree --write-tree -z` output: the tree, then the conflicted entries."""
    fields = out.split(b"\0")
    tree = fields[0].decode()
    entries: list[Conflicted] = []
    for field in fields[1:]:
        if not field:
            break  # an empty field ends the conflicted-file list; messages follow
        info, _, path = field.partition(b"\t")
        mode, oid, stage = info.decode().split()
        entries.append(Conflicted(mode, oid, int(stage), path.decode("utf-8", "surrogateescape")))
    return tree, entries


def theirs_index_info(entries: list[Conflicted]) -> bytes:
    """update-index --index-info lines taking stage 3 (the remote's side) for each path,
    and removing the paths the remote deleted."""
    paths = dict.fromkeys(e.path for e in entries)
    theirs = {e.path: e for e in entries if e.stage == 3}
    lines = []
    for path in paths:
        entry = theirs.get(path)
        if entry is None:
            lines.append(f"0 {ZERO}\t{path}")
        else:
            lines.append(f"{entry.mode} {entry.oid}\t{path}")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


async def onto_remote(wd: Workdir, local: str, remote: str) -> None:
    """Move HEAD (and the work tree) from `local` to a commit on top of `remote`."""
    done = await wd.git.run("merge-tree", "--write-tree", "-z", "--allow-unrelated-histories",
                            local, remote, ok=(0, 1))
    tree, conflicts = parse_merge_tree(done.stdout)
    if done.code == 1:
        tree = await _resolve_theirs(wd, tree, conflicts)
        await _side_branch(wd, local, sorted({c.path for c in conflicts}))
    remote_tree = await wd.git.out("rev-parse", f"{remote}^{{tree}}")
    if tree == remote_tree:
        new = remote  # nothing of ours is left to add
    else:
        message = await wd.git.out("log", "-1", "--format=%B", local)
        new = await wd.git.out("commit-tree", tree, "-p", remote, "-m", message or "gitsync")
    # Index and work tree follow, only where they still match `local`; a file written since
    # the commit makes this fail and the cycle retries after committing it.
    try:
        await wd.git.run("read-tree", "-m", "-u", local, new)
    except GitError as exc:
        raise GitError("read-tree", exc.code, exc.stderr, "other") from None
    await wd.git.run("update-ref", "HEAD", new, local)
    log.info("put local changes on top of the remote's %s", remote[:12])


async def _resolve_theirs(wd: Workdir, tree: str, conflicts: list[Conflicted]) -> str:
    index = wd.git_dir / "gitsync-merge-index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        await wd.git.run("read-tree", tree, env=env)
        await wd.git.run("update-index", "--index-info", input=theirs_index_info(conflicts),
                         env=env)
        return (await wd.git.run("write-tree", env=env)).text.strip()
    finally:
        index.unlink(missing_ok=True)


async def _side_branch(wd: Workdir, local: str, paths: list[str]) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{wd.config.conflict_branch_prefix}{stamp}-{local[:8]}"
    await wd.push(local, name)  # raises when it cannot be kept: nothing moves then
    wd.metrics.failures.labels("conflict").inc()
    wd.metrics.conflict_branches.inc()
    log.warning(
        "conflict with the remote on %s: the local state is on branch %s; %s now has the "
        "remote's version of those files", ", ".join(paths[:10]), name, wd.branch,
    )
