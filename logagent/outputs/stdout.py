"""The streaming sidecar's output: records on stdout, raw (each line as it was written) or as
JSON lines, for the container runtime to collect (`kubectl logs`).

Writes run in a thread: a slow reader of the pipe blocks that thread, not the event loop
(the admin port keeps answering), and the blocked write is the back-pressure.
"""

from __future__ import annotations

import asyncio
import logging
import os

from logagent.follow import Chunk
from logagent.metrics import Stats
from logagent.outputs import BACKOFF_FIRST, BACKOFF_MAX, count_sent, json_records

log = logging.getLogger(__name__)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class StdoutOutput:
    name = "stdout"

    def __init__(self, fmt: str, metadata: dict[str, str], stats: Stats, fd: int = 1) -> None:
        self.json = fmt == "json"
        self.metadata = metadata
        self.stats = stats
        self.fd = fd

    async def start(self) -> None:
        self.stats.output_up[self.name] = 1

    def format(self, batch: list[Chunk]) -> bytes:
        if self.json:
            return b"".join(
                b"\n".join(json_records(chunk, self.metadata)) + b"\n" for chunk in batch
            )
        return b"".join(b"\n".join(chunk.lines) + b"\n" for chunk in batch)

    async def send(self, batch: list[Chunk]) -> None:
        data = self.format(batch)
        delay = BACKOFF_FIRST
        while True:
            try:
                await asyncio.to_thread(write_all, self.fd, data)
                break
            except OSError as exc:  # a closed pipe: wait for nothing better, but say it
                self.stats.output_errors[self.name] += 1
                self.stats.output_up[self.name] = 0
                log.error("cannot write to stdout: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        self.stats.output_up[self.name] = 1
        count_sent(self.stats.lines_sent, self.stats.bytes_sent, self.name, batch)

    async def close(self) -> None:
        pass
