"""Where records go. An output takes a whole batch and returns only once the batch is
delivered (retrying, with backoff, for as long as it takes): that return is the
acknowledgement the checkpoint waits for.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from logagent.follow import Chunk

BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0


class Output(Protocol):
    name: str

    async def start(self) -> None: ...

    async def send(self, batch: list[Chunk]) -> None: ...

    async def close(self) -> None: ...


def iso_time(unix: float) -> str:
    """RFC 3339 in UTC with microseconds, as RFC 5424's TIMESTAMP allows."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix % 1 * 1e6):06d}Z"


def json_records(chunk: Chunk, metadata: dict[str, str]) -> list[bytes]:
    """One JSON object per record: time, message, file, the Downward API metadata, and the
    parsed fields (which never replace those: a parsed 'message' stays under fields)."""
    base: dict[str, Any] = {"time": iso_time(chunk.read_at), "file": chunk.tailer.path}
    base.update(metadata)
    out: list[bytes] = []
    fields = chunk.fields or [None] * len(chunk.lines)
    for line, parsed in zip(chunk.lines, fields, strict=True):
        record = dict(base, message=line.decode("utf-8", "replace"))
        if parsed:
            record["fields"] = parsed
        out.append(json.dumps(record, ensure_ascii=False, default=str).encode())
    return out


def count_sent(
    stats_lines: dict[tuple[str, str], int],
    stats_bytes: dict[tuple[str, str], int],
    output: str,
    batch: list[Chunk],
) -> None:
    for chunk in batch:
        key = (output, chunk.tailer.path)
        stats_lines[key] = stats_lines.get(key, 0) + len(chunk.lines)
        stats_bytes[key] = stats_bytes.get(key, 0) + chunk.size
