"""The pipeline in-process with a fake output: positions move only after the output took a
batch (at least once), and an output that does not take anything pauses reading once the
bounded buffer is full (back-pressure), dropping nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from logagent.checkpoint import Checkpoint
from logagent.config import LogagentConfig
from logagent.files import Files
from logagent.follow import Chunk
from logagent.metrics import Stats
from logagent.pipeline import Pipeline
from podkit.options import load


class FakeOutput:
    name = "fake"

    def __init__(self) -> None:
        self.open = asyncio.Event()  # cleared: the output is "down" and send() waits
        self.lines: list[bytes] = []

    async def start(self) -> None:
        pass

    async def send(self, batch: list[Chunk]) -> None:
        await self.open.wait()
        for chunk in batch:
            self.lines += chunk.lines

    async def close(self) -> None:
        pass


def make(tmp_path: Path, *args: str) -> tuple[Pipeline, FakeOutput, Stats]:
    config = load(LogagentConfig, ["--path", str(tmp_path / "*.log"), "--state-dir",
                                   str(tmp_path / "state"), "--poll-interval", "10ms", *args],
                  {}, prog="logagent")
    stats = Stats()
    (tmp_path / "state").mkdir()
    files = Files(config, stats, {}, first_start=True)
    output = FakeOutput()
    return Pipeline(config, files, [output], Checkpoint(config.state_dir), stats), output, stats


async def until(check: object, seconds: float = 5.0) -> None:
    """Poll `check` (the pipeline's state has no event to wait on from outside)."""
    async with asyncio.timeout(seconds):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_checkpoint_only_after_the_output_took_it(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    pipeline, output, stats = make(tmp_path)
    await pipeline.start()
    await until(lambda: stats.bytes_read)
    await asyncio.sleep(0.1)
    saved = Checkpoint(tmp_path / "state").load()
    assert [p.offset for p in saved.values()] == [0]  # read, not acknowledged
    output.open.set()
    await until(lambda: len(output.lines) == 1000)
    await until(lambda: [p.offset for p in Checkpoint(tmp_path / "state").load().values()]
                == [(tmp_path / "a.log").stat().st_size])
    await pipeline.drain(1.0)


async def test_backpressure_pauses_reading(tmp_path: Path) -> None:
    line = b"x" * 99 + b"\n"
    (tmp_path / "a.log").write_bytes(line * 50_000)  # 5 MB
    pipeline, output, stats = make(tmp_path, "--buffer-bytes", "600k", "--batch-bytes", "64k",
                                   "--max-line-bytes", "64k")
    await pipeline.start()
    await until(lambda: stats.buffered_bytes > 0)
    await asyncio.sleep(0.2)
    assert sum(stats.bytes_read.values()) <= 600 * 1024 + 256 * 1024  # paused, not dropped
    assert sum(stats.dropped_lines.values()) == 0
    output.open.set()
    await until(lambda: len(output.lines) == 50_000, seconds=20)
    assert set(output.lines) == {line[:-1]}
    await pipeline.drain(1.0)
    assert stats.buffered_bytes == 0
