"""One file's tailer: lines cut at newlines, a partial last line held, long lines cut and
counted, truncation seen, and the three positions (offset, emitted, acked)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from logagent.follow import FINGERPRINT_BYTES, TRUNCATED, Tailer
from logagent.records import Joiner


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "app.log"


def tailer_for(path: Path, offset: int = 0, **kwargs: object) -> Tailer:
    return Tailer(str(path), os.open(path, os.O_RDONLY), offset, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def opened() -> Iterator[list[Tailer]]:
    made: list[Tailer] = []
    yield made
    for tailer in made:
        tailer.close()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_lines_and_partial_line(log: Path, opened: list[Tailer]) -> None:
    log.write_bytes(b"one\ntwo\nthr")
    tailer = tailer_for(log, max_line_bytes=100)
    opened.append(tailer)
    count, chunk = tailer.read(1 << 16)
    assert count == 11 and chunk is not None
    assert chunk.lines == [b"one", b"two"] and chunk.end == 8
    assert (tailer.offset, tailer.emitted, tailer.acked) == (11, 8, 0)
    assert tailer.read(1 << 16) == (0, None)
    append(log, b"ee\r\nfour\n")
    _, chunk = tailer.read(1 << 16)
    assert chunk is not None and chunk.lines == [b"three\r", b"four"]  # as written
    assert tailer.emitted == tailer.offset == 20


@pytest.mark.parametrize("read_size", [7, 64, 4096], ids=["tiny-reads", "small", "big"])
def test_long_lines_are_cut_and_counted(log: Path, opened: list[Tailer], read_size: int) -> None:
    log.write_bytes(b"short\n" + b"L" * 100 + b"\nafter\n" + b"P" * 50)
    tailer = tailer_for(log, max_line_bytes=32)
    opened.append(tailer)
    lines: list[bytes] = []
    while (result := tailer.read(read_size))[0]:
        if result[1] is not None:
            lines += result[1].lines
    assert lines == [b"short", b"L" * 32, b"after", b"P" * 32]
    assert tailer.cut_lines == 2
    append(log, b"PPP tail of the cut line\nnext\n")
    _, chunk = tailer.read(4096)
    assert chunk is not None and chunk.lines == [b"next"]  # the rest of the cut line skipped


def test_truncation_is_seen(log: Path, opened: list[Tailer]) -> None:
    first = b"".join(b"line %04d %s\n" % (i, b"a" * 40) for i in range(20))
    log.write_bytes(first)
    tailer = tailer_for(log, max_line_bytes=1000)
    opened.append(tailer)
    tailer.read(1 << 16)
    assert len(tailer.head) == FINGERPRINT_BYTES
    assert tailer.changed() is None
    os.truncate(log, 0)
    assert tailer.changed() == "truncated"  # smaller than what was read
    # Truncated and written past the old offset again: the first bytes tell.
    log.write_bytes(b"".join(b"LINE %04d %s\n" % (i, b"b" * 40) for i in range(40)))
    assert tailer.read(1 << 16) == (TRUNCATED, None)
    generation = tailer.generation
    tailer.restart()
    assert tailer.generation == generation + 1 and tailer.offset == tailer.acked == 0
    _, chunk = tailer.read(1 << 16)
    assert chunk is not None and chunk.lines[0].startswith(b"LINE 0000")


def test_flush_held(log: Path, opened: list[Tailer]) -> None:
    log.write_bytes(b"START a\n  more\nSTART b\n  b1\nunterminated")
    tailer = tailer_for(log, max_line_bytes=1000, joiner=Joiner("START", 1000))
    opened.append(tailer)
    _, chunk = tailer.read(1 << 16)
    assert chunk is not None and chunk.lines == [b"START a\n  more"]
    assert tailer.emitted == len(b"START a\n  more\n")
    held = tailer.flush_held(partial=False)
    assert held is not None and held.lines == [b"START b\n  b1"]
    assert held.end == len(b"START a\n  more\nSTART b\n  b1\n")
    last = tailer.flush_held(partial=True)
    assert last is not None and last.lines == [b"unterminated"] and last.end == tailer.offset


def test_resume_at_offset(log: Path, opened: list[Tailer]) -> None:
    log.write_bytes(b"one\ntwo\n")
    tailer = tailer_for(log, offset=4, max_line_bytes=100)
    opened.append(tailer)
    _, chunk = tailer.read(100)
    assert chunk is not None and chunk.lines == [b"two"]
    assert tailer.lag == 4  # acked starts where it resumed; the rest is not acknowledged
    tailer.acked = chunk.end
    assert tailer.lag == 0
