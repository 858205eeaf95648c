"""The watchers (inotify and polling) on a real directory, the debounce, and the symlink
swap; no git, no network."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from gitsync.publish import current_hash, swap_link
from gitsync.push import Debounce
from gitsync.watch import InotifyWatcher, PollWatcher, make_watcher


async def changes_seen(watcher_factory: object, root: Path, act: object) -> int:
    seen = asyncio.Event()
    count = [0]

    def on_change() -> None:
        count[0] += 1
        seen.set()

    watcher = watcher_factory(root, on_change)  # type: ignore[operator]
    watcher.start()
    if isinstance(watcher, PollWatcher):
        await asyncio.wait_for(watcher.primed.wait(), 5)
    try:
        for step in act:  # type: ignore[attr-defined]
            seen.clear()
            step()
            await asyncio.wait_for(seen.wait(), 5)
    finally:
        watcher.close()
    return count[0]


async def test_inotify_sees_writes_in_new_subdirectories(tmp_path: Path) -> None:
    steps = [
        lambda: (tmp_path / "a").mkdir(),
        lambda: (tmp_path / "a" / "b").mkdir(),
        lambda: (tmp_path / "a" / "b" / "deep.txt").write_text("x"),
        lambda: (tmp_path / "a" / "b" / "deep.txt").rename(tmp_path / "moved.txt"),
        lambda: (tmp_path / "moved.txt").unlink(),
    ]
    assert await changes_seen(InotifyWatcher, tmp_path, steps) >= len(steps)


async def test_polling_sees_writes(tmp_path: Path) -> None:
    steps = [lambda: (tmp_path / "f").write_text("1"), lambda: (tmp_path / "f").unlink()]
    factory = lambda root, cb: PollWatcher(root, cb, 0.05)  # noqa: E731
    assert await changes_seen(factory, tmp_path, steps) >= 2


async def test_auto_is_inotify_here(tmp_path: Path) -> None:
    watcher = make_watcher(tmp_path, lambda: None, "auto", 1.0)
    assert isinstance(watcher, InotifyWatcher)
    watcher.close()


async def test_debounce_waits_for_quiet_but_not_forever() -> None:
    d = Debounce(quiet=0.5, cap=2.0)
    assert d.due() == 0.0
    d.changed()
    assert 0.4 < d.due() <= 0.5
    d.first = time.monotonic() - 1.9  # writes have not settled for 1.9 s
    d.changed()
    assert d.due() <= 0.1  # the cap wins
    d.reset()
    assert d.due() == 0.0 and not d.event.is_set()


def test_swap_link_is_relative_and_replaces(tmp_path: Path) -> None:
    link = tmp_path / "current"
    for name in ("aaa", "bbb"):
        (tmp_path / ".worktrees" / name).mkdir(parents=True)
        swap_link(link, tmp_path / ".worktrees" / name)
        assert os.readlink(link) == f".worktrees/{name}"
        assert current_hash(link) == name
    assert sorted(p.name for p in tmp_path.iterdir()) == [".worktrees", "current"]


def test_no_link_yet(tmp_path: Path) -> None:
    assert current_hash(tmp_path / "nothing") == ""


@pytest.mark.parametrize("method", ["inotify", "poll"])
async def test_make_watcher(tmp_path: Path, method: str) -> None:
    watcher = make_watcher(tmp_path, lambda: None, method, 1.0)
    watcher.start()
    watcher.close()
