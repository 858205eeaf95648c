"""--script: Lua scripts whose results become `script_values{key}` (redis_exporter's lua.go).

A script returns a flat array of names and values, {"name", "1.5", ...}; every value must be
a string holding a number, or the scrape fails (redis_up 0, the reason in the log) while the
other metrics are still served — redis_exporter 1.45 does the same. Scripts run with no keys
and one argument "0", as there (`EVAL script 0 0`).

Scripts are sent by SHA1 (EVALSHA) inside the scrape's one round trip; a Redis that does not
know one yet (first scrape, a restart, SCRIPT FLUSH) answers NOSCRIPT, and the script is then
loaded and run again. Key groups (key_groups.py) use the same helper for their own script.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import NoScriptError

from adapter.keys import RoundTrip, text
from podkit.exposition import Exposition, gauge, labels

log = logging.getLogger(__name__)

VALUES = gauge("script_values", "Values returned by the collect script")

# What Go's strconv.ParseFloat accepts in decimal, so the same values parse or fail as there
# (Python's float() also takes spaces and '1_000').
_GO_FLOAT = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)


def go_float(value: str) -> float | None:
    return float(value) if _GO_FLOAT.fullmatch(value) else None


class Script:
    """A Lua script and its SHA1, as Redis names it in its script cache."""

    __slots__ = ("body", "name", "sha")

    def __init__(self, body: str, name: str = "") -> None:
        self.body = body
        self.name = name
        self.sha = hashlib.sha1(body.encode()).hexdigest()

    def call(self, *args: str) -> tuple[str, ...]:
        return ("EVALSHA", self.sha, *args)


def load_scripts(paths: Sequence[str]) -> tuple[Script, ...]:
    return tuple(Script(Path(p).read_text(encoding="utf-8"), p) for p in paths)


def is_noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)  # redis-py's class for a NOSCRIPT error reply


async def with_scripts(
    round_trip: RoundTrip, commands: Sequence[tuple[str, ...]], scripts: Sequence[Script]
) -> list[Any]:
    """Send `commands`; if Redis lacks a script, SCRIPT LOAD them all and send again."""
    replies = await round_trip(commands)
    if any(is_noscript(r) for r in replies):
        await round_trip([("SCRIPT", "LOAD", s.body) for s in scripts])
        replies = await round_trip(commands)
    return replies


def commands(scripts: Sequence[Script]) -> tuple[tuple[str, ...], ...]:
    return tuple(s.call("0", "0") for s in scripts)


def parse_result(reply: Any) -> dict[str, float]:
    """The name → value pairs of one script's reply; ValueError says what is wrong."""
    if isinstance(reply, Exception):
        raise ValueError(f"script failed: {reply}")
    if not isinstance(reply, list) or len(reply) % 2:
        raise ValueError("a script must return an array of names and values, of even length")
    values: dict[str, float] = {}
    for name, raw in zip(reply[::2], reply[1::2], strict=True):
        if not isinstance(name, bytes) or not isinstance(raw, bytes):
            raise ValueError("script results must be strings (tostring() numbers in Lua)")
        value = go_float(text(raw))
        if value is None:
            raise ValueError(f"script value {text(raw)!r} of {text(name)!r} is not a number")
        values[text(name)] = value
    return values


async def add_script_values(
    out: Exposition, round_trip: RoundTrip, scripts: Sequence[Script], replies: Sequence[Any]
) -> str | None:
    """script_values from the main round trip's replies; the first failure as text, if any."""
    if any(is_noscript(r) for r in replies):  # load them and run them, in one round trip
        loads = [("SCRIPT", "LOAD", s.body) for s in scripts]
        replies = (await round_trip([*loads, *commands(scripts)]))[len(loads) :]
    values: dict[str, float] = {}
    for script, reply in zip(scripts, replies, strict=True):
        try:
            values.update(parse_result(reply))
        except ValueError as exc:
            return f"--script {script.name}: {exc}"
    for name, value in values.items():
        out.put(VALUES, value, labels((("key", name),)))
    return None
