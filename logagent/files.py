"""Which files are followed: globs expanded again and again, rotation by rename or by copy and
truncate, files removed and recreated, and where each file starts (its checkpoint, its head,
or — for a copy of a followed file — the position the original had reached).

A path names at most one followed file at a time (`active`); a file the path no longer names
(renamed, removed) is read to its end and watched for `rotate_wait` more before it closes.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import time
from collections.abc import Iterator

from logagent.checkpoint import MAX_FINISHED, Position
from logagent.config import LogagentConfig
from logagent.follow import FINGERPRINT_BYTES, TRUNCATED, Chunk, FileKey, Tailer, fingerprint
from logagent.metrics import Stats
from logagent.records import Joiner

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024  # one read of one file; files take turns


class Files:
    def __init__(
        self,
        config: LogagentConfig,
        stats: Stats,
        saved: dict[FileKey, Position],
        first_start: bool,
    ) -> None:
        self.config = config
        self.stats = stats
        self.saved = saved  # the checkpoint's positions, taken as files are found again
        self.first_start = first_start  # no checkpoint yet: --read-from applies
        self.tailers: dict[FileKey, Tailer] = {}
        self.active: dict[str, Tailer] = {}
        self.finished: dict[FileKey, Position] = {}  # closed files: not to be read again
        self.pending: list[Chunk] = []  # records flushed by housekeeping, to be queued
        self._refused: set[str] = set()  # paths whose open failed, logged once

    # ---- finding files ------------------------------------------------------------------
    def scan(self, *, startup: bool = False) -> None:
        for pattern in self.config.paths:
            for path in sorted(glob.glob(pattern)):
                if path not in self.active:
                    self.open(path, startup=startup)
        if startup:
            self._recover_saved()

    def open(self, path: str, *, startup: bool = False, offset: int | None = None) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENOENT and path not in self._refused:
                self._refused.add(path)
                log.warning("cannot follow %s: %s", path, exc.strerror)
            return
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        known = self.tailers.get(key)
        if not stat.S_ISREG(st.st_mode) or known is not None:
            os.close(fd)
            if known is not None:  # a rotated file the glob matches too: followed as itself
                known.path, known.detached_at = path, None
                self.active[path] = known
            return
        if offset is None:
            offset = self._start_offset(fd, st, key, path, startup)
        tailer = Tailer(path, fd, offset, self.config.max_line_bytes, self._joiner())
        self.tailers[key] = self.active[path] = tailer
        self._refused.discard(path)
        log.info("following %s (dev:ino %d:%d) from offset %d", path, *key, offset)

    def _joiner(self) -> Joiner | None:
        start = self.config.multiline_start
        return Joiner(start, self.config.max_line_bytes) if start else None

    def _start_offset(
        self, fd: int, st: os.stat_result, key: FileKey, path: str, startup: bool
    ) -> int:
        known = self.saved.pop(key, None) or self.finished.pop(key, None)
        if known is not None and fingerprint(os.pread(fd, known.fp_len, 0)) == known.fp:
            if st.st_size >= known.offset:
                return known.offset
            log.warning("%s was truncated while not followed: reading it from the start", path)
            return 0
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        if len(head) == FINGERPRINT_BYTES:
            for original in self.tailers.values():
                if original.head == head and not original.closed:
                    # A copy (copytruncate's first step): its start was read already.
                    log.info("%s is a copy of %s: reading it from %d", path, original.path,
                             original.emitted)
                    return original.emitted
        if startup and self.first_start and self.config.read_from == "tail":
            return st.st_size
        return 0

    def _recover_saved(self) -> None:
        """Files in the checkpoint the globs no longer match (rotated while the agent was
        down): found by device, inode and print in their old directory, read to the end."""
        for key, position in list(self.saved.items()):
            found = _find_in_dir(os.path.dirname(position.path), key)
            if found is None:
                log.info("%s (dev:ino %d:%d) is gone since the last run", position.path, *key)
                continue
            self.open(found, offset=position.offset)
            tailer = self.tailers.get(key)
            if tailer is not None and fingerprint(tailer.head[: position.fp_len]) == position.fp:
                self.saved.pop(key, None)
                self._detach(tailer, found, None)
            elif tailer is not None:  # same inode, other file: not ours after all
                self._forget(tailer)
        for key, position in self.saved.items():
            self.finished[key] = position
        self.saved.clear()

    # ---- reading ------------------------------------------------------------------------
    def read(self, budget: int) -> tuple[int, list[Chunk]]:
        """One read of each open file, up to `budget` bytes in all."""
        total, chunks = 0, self.pending
        self.pending = []
        for tailer in list(self.tailers.values()):
            if total >= budget:
                break
            count, chunk = tailer.read(min(READ_BYTES, budget - total))
            if count == TRUNCATED:
                self._truncated(tailer)
                continue
            if count:
                total += count
                self.stats.bytes_read[tailer.path] += count
                if tailer.cut_lines:
                    self.stats.cut_lines[tailer.path] += tailer.cut_lines
                    log.warning("%s: %d line(s) longer than %d bytes cut", tailer.path,
                                tailer.cut_lines, self.config.max_line_bytes)
                    tailer.cut_lines = 0
            if chunk is not None:
                self.stats.lines_read[tailer.path] += len(chunk.lines)
                chunks.append(chunk)
        return total, chunks

    # ---- rotation, truncation, closing ---------------------------------------------------
    def housekeeping(self) -> None:
        now = time.monotonic()
        for path, tailer in list(self.active.items()):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._detach(tailer, path, "remove" if tailer.unlinked() else "rename")
                continue
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != tailer.key:
                self._detach(tailer, path, "remove" if tailer.unlinked() else "rename")
                self.open(path)
            elif tailer.changed() == "truncated":
                self._truncated(tailer)
        quiet = self.config.multiline_timeout
        for tailer in list(self.tailers.values()):
            if tailer.closed:
                if tailer.acked >= tailer.emitted:  # all sent: remembered, then let go
                    self._forget(tailer)
                continue
            if tailer.joiner is not None and tailer.joiner.held and now - tailer.last_data > quiet:
                self._pend(tailer.flush_held(partial=False))
            if tailer.detached_at is not None and tailer.offset >= tailer.size:
                since = now - max(tailer.last_data, tailer.detached_at)
                if since > self.config.rotate_wait and tailer.changed() is None:
                    if tailer.offset >= tailer.size:  # really at the end: finish it
                        self._pend(tailer.flush_held(partial=True))
                        tailer.close()
        self._limit_rotated()

    def _pend(self, chunk: Chunk | None) -> None:
        if chunk is not None:
            self.stats.lines_read[chunk.tailer.path] += len(chunk.lines)
            self.pending.append(chunk)

    def _detach(self, tailer: Tailer, path: str, kind: str | None) -> None:
        if self.active.get(path) is tailer:
            del self.active[path]
        if tailer.detached_at is None:
            tailer.detached_at = time.monotonic()
        if kind is not None:
            self.stats.rotations[(path, kind)] += 1
            log.info("%s: %s seen; reading the old file to its end", path, kind)

    def _truncated(self, tailer: Tailer) -> None:
        self.stats.rotations[(tailer.path, "truncate")] += 1
        copy = _find_copy(tailer, self.tailers)
        if copy is not None:
            self.open(copy, offset=tailer.emitted)
            follower = self.active.pop(copy, None)
            if follower is not None:
                self._detach(follower, copy, None)
            log.info("%s truncated; its copy %s is read from %d", tailer.path, copy,
                     tailer.emitted)
        else:
            log.info("%s truncated: reading it again from the start", tailer.path)
        tailer.restart()

    def _limit_rotated(self) -> None:
        rotated = [t for t in self.tailers.values() if t.detached_at is not None and not t.closed]
        rotated.sort(key=lambda t: t.detached_at or 0.0)
        for tailer in rotated[: max(len(rotated) - self.config.max_rotated_files, 0)]:
            lines, size = _count_unread(tailer)
            self.stats.dropped_lines["rotated_backlog"] += lines
            self.stats.dropped_bytes["rotated_backlog"] += size
            log.error("dropping %d unread line(s) (%d bytes) of rotated %s: more than "
                      "--max-rotated-files=%d rotated files wait to be read", lines, size,
                      tailer.path, self.config.max_rotated_files)
            tailer.close()

    def _forget(self, tailer: Tailer) -> None:
        tailer.close()
        self.tailers.pop(tailer.key, None)
        if self.active.get(tailer.path) is tailer:
            del self.active[tailer.path]
        self.finished[tailer.key] = position_of(tailer)
        while len(self.finished) > MAX_FINISHED:
            del self.finished[next(iter(self.finished))]

    # ---- state --------------------------------------------------------------------------
    def positions(self) -> list[Position]:
        return [position_of(t) for t in self.tailers.values()] + list(self.finished.values())

    def open_tailers(self) -> list[Tailer]:
        return [t for t in self.tailers.values() if not t.closed]

    def close(self) -> None:
        for tailer in self.tailers.values():
            tailer.close()


def position_of(tailer: Tailer) -> Position:
    return Position(tailer.path, *tailer.key, tailer.fp, len(tailer.head), tailer.acked)


def _siblings(path: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(os.path.dirname(path) or ".") as entries:
            yield from entries
    except OSError:
        return


def _find_in_dir(directory: str, key: FileKey) -> str | None:
    for entry in _siblings(os.path.join(directory, "x")):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key and stat.S_ISREG(st.st_mode):
            return entry.path
    return None


def _find_copy(tailer: Tailer, followed: dict[FileKey, Tailer]) -> str | None:
    """A sibling named like the file (app.log.1, app.log-20240101) that starts with the
    same bytes and is not followed yet: copytruncate's copy."""
    if len(tailer.head) < FINGERPRINT_BYTES:
        return None  # too short a print to tell a copy from a coincidence
    base = os.path.basename(tailer.path)
    for entry in _siblings(tailer.path):
        if entry.name == base or not entry.name.startswith(base):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (st.st_dev, st.st_ino) in followed or not stat.S_ISREG(st.st_mode):
                continue
            with open(entry.path, "rb") as f:
                if f.read(FINGERPRINT_BYTES) == tailer.head:
                    return entry.path
        except OSError:
            continue
    return None


def _count_unread(tailer: Tailer) -> tuple[int, int]:
    """Lines and bytes past what was handed on, for the drop counters."""
    lines = size = 0
    if tailer.fd is None:
        return 0, 0
    offset = tailer.emitted
    while block := os.pread(tailer.fd, 1 << 20, offset):
        lines += block.count(b"\n")
        size += len(block)
        offset += len(block)
    return lines + (1 if size and not _ends_with_newline(tailer, offset) else 0), size


def _ends_with_newline(tailer: Tailer, end: int) -> bool:
    return tailer.fd is not None and os.pread(tailer.fd, 1, end - 1) == b"\n"
