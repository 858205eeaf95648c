"""Positions on disk: for each file (device, inode, fingerprint) the offset up to which its
records were acknowledged. Written whole, atomically: a temporary file, fsync, rename over
the old one, fsync of the directory, so a kill -9 or a power cut leaves the old or the new
checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from logagent.follow import FileKey

log = logging.getLogger(__name__)

FILENAME = "positions.json"
VERSION = 1
MAX_FINISHED = 1000  # positions of files no longer followed, kept so a glob match is not reread


@dataclass(frozen=True)
class Position:
    path: str
    dev: int
    ino: int
    fp: str
    fp_len: int
    offset: int

    @property
    def key(self) -> FileKey:
        return (self.dev, self.ino)


class Checkpoint:
    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / FILENAME
        self.writes = 0
        self._last: bytes = b""

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[FileKey, Position]:
        """The saved positions; none (with a warning) when the file is unreadable."""
        try:
            data = json.loads(self.path.read_bytes())
            positions = [Position(**entry) for entry in data["files"]]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", self.path, exc)
            return {}
        return {p.key: p for p in positions}

    def save(self, positions: list[Position]) -> bool:
        """Write the positions if they changed; True when written."""
        body = json.dumps(
            {"version": VERSION, "files": [asdict(p) for p in positions]}, separators=(",", ":")
        ).encode()
        if body == self._last:
            return False
        tmp = self.path.with_name(FILENAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        self._last = body
        self.writes += 1
        return True
