"""Never lose a line through rotation: sequence-numbered lines written under load while the
file is renamed, copied and truncated, or deleted and made again; every number must come
out on stdout exactly once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support.logagent_procs import Agent, Writer, seq_line, tally, wait_all

LINES = 30_000
EVERY = 5_000
RATE = 25_000.0  # lines/s: a rotation every 0.2 s, four polls of the agent apart


def rename_rotation(log: Path) -> Callable[[int], None]:
    """logrotate's default (create): app.log → app.log.1 → app.log.2 …, a new app.log."""

    def rotate(_n: int) -> None:
        rotated = sorted(log.parent.glob(log.name + ".*"), key=lambda p: -int(p.suffix[1:]))
        for old in rotated:
            old.rename(log.with_name(f"{log.name}.{int(old.suffix[1:]) + 1}"))
        log.rename(log.with_name(log.name + ".1"))
        log.touch()

    return rotate


@pytest.mark.parametrize(
    "glob_suffix",
    [pytest.param("", id="path-only"), pytest.param("*", id="glob-matches-rotated")],
)
def test_rename_rotation_under_load(
    agents: Callable[..., Agent], logs_dir: Path, glob_suffix: str
) -> None:
    log = logs_dir / "app.log"
    log.touch()
    agent = agents("--path", f"{log}{glob_suffix}").start()
    writer = Writer(log, LINES, every=EVERY, between=rename_rotation(log), rate=RATE)
    writer.start()
    writer.finish()
    result = wait_all(agent.stdout, LINES)
    assert not result.lost and result.duplicates == 0, str(result)
    assert agent.metric('logagent_rotations_total{file="' + str(log)) >= LINES // EVERY - 1


def test_copytruncate_under_load(agents: Callable[..., Agent], logs_dir: Path) -> None:
    """logrotate's copytruncate: copy app.log to app.log.1, then truncate app.log. The writer
    pauses during the two steps, as logrotate's own gap between them loses lines whatever
    reads the file; what the agent had not read yet is taken from the copy."""
    log = logs_dir / "app.log"
    log.touch()
    agent = agents("--path", str(log)).start()
    writer: Writer

    def copytruncate(n: int) -> None:
        with writer.lock:
            shutil.copyfile(log, log.with_name(f"app.log.{n}"))
            os.truncate(log, 0)

    writer = Writer(log, LINES, every=EVERY, between=copytruncate, rate=RATE)
    writer.start()
    writer.finish()
    result = wait_all(agent.stdout, LINES)
    assert not result.lost and result.duplicates == 0, str(result)
    assert agent.metric('logagent_rotations_total{file="' + str(log) + '",kind="truncate"}') >= 1


def test_deleted_and_recreated(agents: Callable[..., Agent], logs_dir: Path) -> None:
    log = logs_dir / "app.log"
    log.touch()
    agent = agents("--path", str(logs_dir / "*.log")).start()
    total = 0
    for _round in range(4):
        writer = Writer(log, 2000, start=total + 1)
        writer.start()
        writer.finish()
        total += 2000
        result = wait_all(agent.stdout, total)  # read before it goes
        assert not result.lost, str(result)
        log.unlink()
    result = wait_all(agent.stdout, total)
    assert not result.lost and result.duplicates == 0, str(result)
    # Once followed, lines written just before the delete still come through (the open
    # file outlives its name), and so do those of the file made again at once.
    Writer(log, 1, start=total + 1).run()
    wait_all(agent.stdout, total + 1)
    Writer(log, 3000, start=total + 2).run()
    log.unlink()
    Writer(log, 3000, start=total + 3002).run()
    result = wait_all(agent.stdout, total + 6001)
    assert not result.lost and result.duplicates == 0, str(result)


def test_one_megabyte_line(agents: Callable[..., Agent], logs_dir: Path) -> None:
    log = logs_dir / "app.log"
    big = b"seq=%08d " % 2 + b"y" * (1024 * 1024 - 14) + b"\n"
    log.write_bytes(seq_line(1))
    agent = agents("--path", str(log)).start()
    with open(log, "ab") as f:
        for start in range(0, len(big), 100_000):  # written in pieces: a partial line waits
            f.write(big[start : start + 100_000])
            f.flush()
        f.write(seq_line(3))
    result = wait_all(agent.stdout, 3)
    assert not result.lost and result.duplicates == 0, str(result)
    assert big in agent.stdout()  # whole, not cut: 1 MiB is the default limit
    assert agent.metric("logagent_lines_cut_total") == 0


def test_longer_lines_are_cut_and_counted(agents: Callable[..., Agent], logs_dir: Path) -> None:
    log = logs_dir / "app.log"
    log.write_bytes(seq_line(1) + b"seq=%08d " % 2 + b"z" * 200_000 + b"\n" + seq_line(3))
    agent = agents("--path", str(log), "--max-line-bytes", "64k").start()
    result = wait_all(agent.stdout, 3)
    assert not result.lost and result.duplicates == 0, str(result)
    lines = agent.stdout().split(b"\n")
    assert len(lines[1]) == 64 * 1024
    assert lines[2] == seq_line(3).rstrip(b"\n")
    assert agent.metric("logagent_lines_cut_total") == 1
    assert "cut" in agent.stderr()


def test_partial_last_line_waits_for_its_newline(
    agents: Callable[..., Agent], logs_dir: Path
) -> None:
    log = logs_dir / "app.log"
    log.write_bytes(seq_line(1) + b"seq=00000002 half")
    agent = agents("--path", str(log)).start()
    wait_all(agent.stdout, 1)
    assert b"half" not in agent.stdout()
    with open(log, "ab") as f:
        f.write(b" and the rest\n")
    result = wait_all(agent.stdout, 2)
    assert not result.lost, str(result)
    assert b"seq=00000002 half and the rest\n" in agent.stdout()


def test_new_files_are_picked_up(agents: Callable[..., Agent], logs_dir: Path) -> None:
    agent = agents("--path", str(logs_dir / "*.log")).start()
    (logs_dir / "a.log").write_bytes(seq_line(1))
    (logs_dir / "sub").mkdir()
    (logs_dir / "b.log").write_bytes(seq_line(2))
    (logs_dir / "c.txt").write_bytes(seq_line(3))  # not matched
    result = wait_all(agent.stdout, 2)
    assert not result.lost and result.duplicates == 0, str(result)
    assert 3 not in tally(agent.stdout(), 3).seen
    assert agent.metric("logagent_files_followed") == 2
