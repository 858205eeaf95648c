"""From files to outputs, at least once: the reader fills a bounded buffer, the sender takes a
batch, hands it to every output, and only when all of them took it moves the files' acked
positions and writes the checkpoint. A full buffer pauses reading (back-pressure): the files
themselves hold what is not read yet, so an output that is down loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from logagent.checkpoint import Checkpoint
from logagent.config import LogagentConfig
from logagent.files import Files
from logagent.follow import Chunk
from logagent.metrics import Stats
from logagent.outputs import Output
from logagent.records import make_parser

log = logging.getLogger(__name__)


class Buffer:
    """Chunks read and not yet acknowledged, bounded in bytes."""

    def __init__(self, capacity: int, stats: Stats) -> None:
        self.capacity = capacity
        self.stats = stats
        self.size = 0  # queued + in flight
        self._queue: deque[Chunk] = deque()
        self._put = asyncio.Event()  # the sender waits for records
        self._released = asyncio.Event()  # the reader (and the drain) wait for room

    def free(self) -> int:
        return max(self.capacity - self.size, 0)

    def put(self, chunk: Chunk) -> None:
        self._queue.append(chunk)
        self.size += chunk.size
        self.stats.buffered_bytes = self.size
        self._put.set()

    def queued(self) -> int:
        return len(self._queue)

    async def take(self, max_bytes: int) -> list[Chunk]:
        """At least one chunk, and more while the batch stays under max_bytes."""
        while not self._queue:
            self._put.clear()
            await self._put.wait()
        batch = [self._queue.popleft()]
        size = batch[0].size
        while self._queue and size + self._queue[0].size <= max_bytes:
            chunk = self._queue.popleft()
            batch.append(chunk)
            size += chunk.size
        return batch

    def release(self, batch: list[Chunk]) -> None:
        self.size -= sum(chunk.size for chunk in batch)
        self.stats.buffered_bytes = self.size
        self._released.set()

    async def wait_release(self, seconds: float) -> None:
        self._released.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._released.wait()
        except TimeoutError:
            pass


class Pipeline:
    def __init__(
        self,
        config: LogagentConfig,
        files: Files,
        outputs: list[Output],
        checkpoint: Checkpoint,
        stats: Stats,
    ) -> None:
        self.config = config
        self.files = files
        self.outputs = outputs
        self.checkpoint = checkpoint
        self.stats = stats
        self.buffer = Buffer(config.buffer_bytes, stats)
        self.parser = make_parser(config.parser, config.regex)
        self._reader: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for output in self.outputs:
            await output.start()
        self.files.scan(startup=True)
        await self._save()  # positions of newly found files (and a first checkpoint)
        self._reader = asyncio.create_task(self._read_loop(), name="logagent-reader")
        self._sender = asyncio.create_task(self._send_loop(), name="logagent-sender")

    async def _read_loop(self) -> None:
        config = self.config
        next_check = next_scan = time.monotonic()
        while True:
            free = self.buffer.free()
            count = 0
            if free > 0:
                count, chunks = self.files.read(free)
                for chunk in chunks:
                    self._parse(chunk)
                    self.buffer.put(chunk)
            now = time.monotonic()
            if now >= next_check:
                self.files.housekeeping()
                next_check = now + config.poll_interval
            if now >= next_scan:
                self.files.scan()
                next_scan = now + config.scan_interval
            if count and self.buffer.free() > 0:
                await asyncio.sleep(0)  # let the sender and the admin port run
            elif free <= 0:  # full: wait for an acknowledgement (back-pressure)
                await self.buffer.wait_release(config.poll_interval)
            else:  # every file at its end
                await asyncio.sleep(min(config.poll_interval, max(next_check - now, 0.001)))

    def _parse(self, chunk: Chunk) -> None:
        if self.parser is None:
            return
        chunk.fields = [self.parser(line) for line in chunk.lines]
        failed = chunk.fields.count(None)
        if failed:
            self.stats.parse_errors[chunk.tailer.path] += failed

    async def _send_loop(self) -> None:
        while True:
            batch = await self.buffer.take(self.config.batch_bytes)
            if len(self.outputs) == 1:
                await self.outputs[0].send(batch)
            else:
                await asyncio.gather(*(output.send(batch) for output in self.outputs))
            for chunk in batch:  # acknowledged by every output: the positions move
                tailer = chunk.tailer
                if chunk.generation == tailer.generation and chunk.end > tailer.acked:
                    tailer.acked = chunk.end
            await self._save()
            self.buffer.release(batch)

    async def _save(self) -> None:
        positions = self.files.positions()
        try:
            if await asyncio.to_thread(self.checkpoint.save, positions):
                self.stats.checkpoint_writes += 1
        except OSError as exc:  # keep going: a later save may work; a crash would reread
            log.error("cannot write the checkpoint in %s: %s", self.checkpoint.dir, exc)

    async def drain(self, bound: float) -> None:
        """Stop reading, send what is buffered (for up to `bound` s), checkpoint, close."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        for tailer in self.files.open_tailers():  # held multi-line records are complete
            chunk = tailer.flush_held(partial=False)
            if chunk is not None:
                self._parse(chunk)
                self.buffer.put(chunk)
        deadline = time.monotonic() + bound
        while self.buffer.size > 0 and time.monotonic() < deadline:
            await self.buffer.wait_release(max(deadline - time.monotonic(), 0.001))
        if self.buffer.size > 0:
            log.warning("shutdown timeout: %d buffered bytes not sent (they are read again "
                        "at the next start)", self.buffer.size)
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._save()
        for output in self.outputs:
            await output.close()
        self.files.close()

    def failed(self) -> BaseException | None:
        """The exception a loop died of, if one did (a bug: the service exits non-zero)."""
        for task in (self._reader, self._sender):
            if task is not None and task.done() and not task.cancelled():
                return task.exception()
        return None
