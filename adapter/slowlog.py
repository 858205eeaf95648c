"""SLOWLOG LEN and SLOWLOG GET 1 → slowlog_length, slowlog_last_id,
last_slow_execution_duration_seconds."""

from __future__ import annotations

from typing import Any

from podkit.exposition import Exposition, gauge

COMMANDS = (("SLOWLOG", "LEN"), ("SLOWLOG", "GET", "1"))

LENGTH = gauge("slowlog_length", "Total slowlog")
LAST_ID = gauge("slowlog_last_id", "Last id of slowlog")
LAST_DURATION = gauge(
    "last_slow_execution_duration_seconds",
    "The amount of time needed for last slow execution, in seconds",
)


def add_slowlog(out: Exposition, length: Any, last: Any) -> None:
    if isinstance(length, int):
        out.put(LENGTH, float(length))
    if isinstance(last, list):
        last_id = duration_us = 0
        # Each entry: [id, unix time, duration in µs, [args...], client addr, client name]
        if last and isinstance(last[0], list) and len(last[0]) >= 3:
            last_id, duration_us = int(last[0][0]), int(last[0][2])
        out.put(LAST_ID, float(last_id))
        out.put(LAST_DURATION, duration_us / 1e6)
