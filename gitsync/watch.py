"""Noticing writes under --push-dir: inotify (Linux, through libc with ctypes), or a
polling scan where inotify is missing or out of watches.

Both only say "something changed"; git itself works out what (push.py). inotify watches
every directory, adding new ones as they appear; a queue overflow is just another
"something changed". The poller compares a (path, size, mtime) signature per scan.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_ISDIR = 0x400, 0x800, 0x4000, 0x40000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
        | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class WatchUnavailable(OSError):
    """inotify cannot be used here (not Linux, no watches left...): poll instead."""


class InotifyWatcher:
    """Calls `on_change` from the event loop whenever something under `root` changes."""

    def __init__(self, root: Path, on_change: Callable[[], None]) -> None:
        self.root = root
        self.on_change = on_change
        self._dirs: dict[int, Path] = {}
        libc_name = ctypes.util.find_library("c")
        if libc_name is None:
            raise WatchUnavailable("no libc")
        self._libc = ctypes.CDLL(libc_name, use_errno=True)
        if not hasattr(self._libc, "inotify_init1"):
            raise WatchUnavailable("libc has no inotify")
        self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise WatchUnavailable(ctypes.get_errno(), "inotify_init1 failed")
        try:
            self._watch_tree(root)
        except OSError:
            os.close(self._fd)
            raise

    def _add(self, path: Path) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR):  # gone already: nothing to watch
                return
            raise WatchUnavailable(err, f"inotify_add_watch {path}: {os.strerror(err)}")
        self._dirs[wd] = path

    def _watch_tree(self, top: Path) -> None:
        self._add(top)
        for dirpath, dirnames, _ in os.walk(top):
            for name in dirnames:
                self._add(Path(dirpath) / name)

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self._fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        offset, changed = 0, False
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            changed = True
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and wd in self._dirs:
                try:
                    self._watch_tree(self._dirs[wd] / os.fsdecode(name))
                except WatchUnavailable as exc:
                    log.warning("%s: changes there are found by the periodic check", exc)
            if mask & IN_Q_OVERFLOW:
                log.debug("inotify queue overflowed")
        if changed:
            self.on_change()

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self._fd)
        except RuntimeError:
            pass
        os.close(self._fd)


def signature(root: Path) -> int:
    """A hash of every file's path, size and mtime under `root`."""
    items = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            items.append((path, st.st_size, st.st_mtime_ns))
        items.append((dirpath, -1, 0))
    return hash(tuple(sorted(items)))


class PollWatcher:
    """Calls `on_change` when a scan every `interval` seconds finds a different signature."""

    def __init__(self, root: Path, on_change: Callable[[], None], interval: float) -> None:
        self.root, self.on_change, self.interval = root, on_change, interval
        self._task: asyncio.Task[None] | None = None
        self.primed = asyncio.Event()  # the first scan is done: changes from now on count

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gitsync-poll")

    async def _loop(self) -> None:
        last = await asyncio.to_thread(signature, self.root)
        self.primed.set()
        while True:
            await asyncio.sleep(self.interval)
            now = await asyncio.to_thread(signature, self.root)
            if now != last:
                last = now
                self.on_change()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


Watcher = InotifyWatcher | PollWatcher


def make_watcher(
    root: Path, on_change: Callable[[], None], method: str, interval: float
) -> Watcher:
    if method in ("auto", "inotify"):
        try:
            return InotifyWatcher(root, on_change)
        except (WatchUnavailable, OSError) as exc:
            if method == "inotify":
                raise
            log.warning("inotify unavailable (%s): polling every %.1fs", exc, interval)
    return PollWatcher(root, on_change, interval)
