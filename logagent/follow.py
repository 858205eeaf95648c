"""One followed file: its identity, its read position, and lines cut out of its bytes.

A file is known by device + inode, plus a fingerprint of its first bytes so that an inode the
filesystem hands to a new file (after a delete, while the agent was down) is not taken for
the old one. Three positions move forward: `offset` (bytes read), `emitted` (end of the last
record handed on; a partial last line or a held multi-line record lies past it) and `acked`
(end of the last record the outputs took; the checkpoint saves this one).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from logagent.records import Fields, Joiner

FINGERPRINT_BYTES = 256
FileKey = tuple[int, int]  # (st_dev, st_ino)


TRUNCATED = -1  # what read() returns when the file was truncated under it


def fingerprint(head: bytes) -> str:
    """A short hash of a file's first bytes, for the checkpoint."""
    return hashlib.blake2b(head, digest_size=8).hexdigest()


def key_of(st: os.stat_result) -> FileKey:
    return (st.st_dev, st.st_ino)


@dataclass(slots=True)
class Chunk:
    """Records cut from one read of one file, in file order."""

    tailer: Tailer
    generation: int  # the tailer's generation: a truncation starts a new one
    end: int  # file offset just past the last record
    lines: list[bytes]
    size: int  # bytes held in the buffer (records + separators)
    read_at: float  # Unix time of the read: the records' timestamp
    fields: list[Fields | None] | None = None  # parsed, one per record, with --parser


class Tailer:
    def __init__(
        self,
        path: str,
        fd: int,
        offset: int,
        max_line_bytes: int,
        joiner: Joiner | None = None,
    ) -> None:
        st = os.fstat(fd)
        self.path = path
        self.fd: int | None = fd
        self.key = key_of(st)
        self.offset = self.emitted = self.acked = offset
        self.max_line_bytes = max_line_bytes
        self.joiner = joiner
        self.generation = 0
        self.partial = b""
        self.skipping = False  # inside a line already cut at max_line_bytes
        self.head = os.pread(fd, FINGERPRINT_BYTES, 0)  # the first bytes, as the print
        self.size = st.st_size
        self.last_data = time.monotonic()
        self.detached_at: float | None = None  # when the path stopped naming this file
        self.cut_lines = 0  # lines longer than max_line_bytes, cut (a counter, by the reader)

    def __repr__(self) -> str:
        return f"Tailer({self.path!r}, dev:ino={self.key[0]}:{self.key[1]}, at {self.offset})"

    @property
    def closed(self) -> bool:
        return self.fd is None

    def read(self, max_bytes: int) -> tuple[int, Chunk | None]:
        """Read what is there (up to max_bytes): (bytes read, the records they completed),
        or (TRUNCATED, None)."""
        if self.fd is None:
            return 0, None
        data = os.pread(self.fd, max_bytes, self.offset)
        if not data:
            return 0, None
        # Truncated and written again since the last read (copytruncate under load)? Then
        # these bytes are new content at an old offset: not lines. Checked after the read,
        # so a truncation between check and read cannot slip through.
        if self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            return TRUNCATED, None
        self.offset += len(data)
        self.size = max(self.size, self.offset)
        self.last_data = time.monotonic()
        if len(self.head) < FINGERPRINT_BYTES:  # the file was short when opened: grow the print
            self.head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        lines = self._split(data)
        end = self.offset - len(self.partial)
        if self.joiner is not None:
            lines = self.joiner.feed(lines)
            end -= self.joiner.held_bytes
        return len(data), self._chunk(lines, end)

    def _split(self, data: bytes) -> list[bytes]:
        if self.skipping:  # the rest of a cut line: dropped up to its newline
            newline = data.find(b"\n")
            if newline < 0:
                return []
            data, self.skipping = data[newline + 1 :], False
        buf = self.partial + data if self.partial else data
        lines = buf.split(b"\n")
        self.partial = lines.pop()
        limit = self.max_line_bytes
        if len(buf) > limit:
            for i, line in enumerate(lines):
                if len(line) > limit:
                    lines[i] = line[:limit]
                    self.cut_lines += 1
            if len(self.partial) > limit:  # no newline in sight: cut, skip to the newline
                lines.append(self.partial[:limit])
                self.cut_lines += 1
                self.partial, self.skipping = b"", True
        return lines

    def _chunk(self, lines: list[bytes], end: int) -> Chunk | None:
        if not lines:
            return None
        self.emitted = end
        size = sum(map(len, lines)) + len(lines)
        return Chunk(self, self.generation, end, lines, size, time.time())

    def flush_held(self, *, partial: bool) -> Chunk | None:
        """The held multi-line record, and the unterminated last line when `partial` (a file
        that is finished: rotated away and quiet), as records."""
        lines: list[bytes] = []
        if self.joiner is not None and (record := self.joiner.flush()) is not None:
            lines.append(record)
        end = self.offset - len(self.partial)
        if partial and self.partial:
            lines.append(self.partial[: self.max_line_bytes])
            self.partial, end = b"", self.offset
        return self._chunk(lines, end)

    def changed(self) -> str | None:
        """'truncated' when the file shrank below what was read or its first bytes changed
        (copytruncate, then new writes), else None."""
        if self.fd is None:
            return None
        st = os.fstat(self.fd)
        self.size = st.st_size
        if st.st_size < self.offset:
            return "truncated"
        if self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            return "truncated"
        return None

    def restart(self) -> None:
        """Read again from the start (after truncation): a new generation, whose records are
        the only ones whose acknowledgement still moves `acked`."""
        self.generation += 1
        self.offset = self.emitted = self.acked = 0
        self.partial, self.skipping = b"", False
        if self.joiner is not None:
            self.joiner.flush()
        assert self.fd is not None
        self.head = os.pread(self.fd, FINGERPRINT_BYTES, 0)

    def unlinked(self) -> bool:
        return self.fd is not None and os.fstat(self.fd).st_nlink == 0

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @property
    def fp(self) -> str:
        return fingerprint(self.head)

    @property
    def lag(self) -> int:
        """Bytes in the file not yet acknowledged by the outputs."""
        return max(self.size - self.acked, 0)
