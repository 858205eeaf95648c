"""--check-keys, --check-single-keys and --count-keys: key_size, key_value and keys_count.

These need more than the scrape's one round trip (SELECT, SCAN cursors, TYPE, then the
size per type), so they run only when configured, after the main round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from podkit.exposition import Exposition, gauge, labels
from podkit.options import OptionError

log = logging.getLogger(__name__)

KeySpec = tuple[int, str]  # (database, key or pattern)
RoundTrip = Callable[[Sequence[tuple[str, ...]]], Awaitable[list[Any]]]

KEY_SIZE = gauge("key_size", 'The length or size of "key"')
KEY_VALUE = gauge("key_value", 'The value of "key"')
KEY_VALUE_AS_STRING = gauge("key_value_as_string", 'The value of "key" as a string')
KEYS_COUNT = gauge("keys_count", "Count of keys")

_SIZE_COMMAND = {"list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN", "stream": "XLEN"}


def parse_key_specs(text: str) -> tuple[KeySpec, ...]:
    """'db3=user:*,sessions' → ((3, 'user:*'), (0, 'sessions')), as redis_exporter reads it."""
    specs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        db, sep, key = part.partition("=")
        if not sep:
            specs.append((0, part))
            continue
        if not (db.startswith("db") and db[2:].isdigit()) or not key:
            raise OptionError(f"expected [dbN=]key, got {part!r}")
        specs.append((int(db[2:]), key))
    return tuple(specs)


def text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def scan(round_trip: RoundTrip, pattern: str, batch: int) -> list[bytes]:
    keys: list[bytes] = []
    cursor = b"0"
    while True:
        (reply,) = await round_trip(
            (("SCAN", text(cursor), "MATCH", pattern, "COUNT", str(batch)),)
        )
        if isinstance(reply, Exception):
            raise reply
        cursor, batch_keys = reply
        keys.extend(batch_keys)
        if cursor in (b"0", 0, "0"):
            return keys


async def scan_or_log(round_trip: RoundTrip, pattern: str, batch: int) -> list[bytes]:
    try:
        return await scan(round_trip, pattern, batch)
    except ResponseError as exc:
        log.error("error with SCAN for pattern %r: %s", pattern, exc)
        return []


async def add_key_metrics(
    out: Exposition,
    round_trip: RoundTrip,
    *,
    check_keys: Sequence[KeySpec],
    single_keys: Sequence[KeySpec],
    count_keys: Sequence[KeySpec],
    batch: int,
    home_db: int,
) -> None:
    """Refused commands (SELECT on a cluster node or a Sentinel, SCAN under an ACL) cost
    their keys and an error in the log, not the scrape, as in redis_exporter."""
    dbs = sorted({db for db, _ in (*check_keys, *single_keys, *count_keys)})
    try:
        for db in dbs:
            (selected,) = await round_trip((("SELECT", str(db)),))
            if isinstance(selected, Exception):
                log.error("couldn't select database %d for the key checks: %s", db, selected)
                continue
            names: list[bytes] = [k.encode() for d, k in single_keys if d == db]
            for d, pattern in check_keys:
                if d == db:
                    names.extend(await scan_or_log(round_trip, pattern, batch))
            if names:
                await add_sizes(out, round_trip, f"db{db}", list(dict.fromkeys(names)))
            for d, pattern in count_keys:
                if d == db:
                    try:
                        count = len(await scan(round_trip, pattern, batch))
                    except ResponseError as exc:
                        log.error("couldn't count keys of %r: %s", pattern, exc)
                        continue
                    out.put(
                        KEYS_COUNT,
                        float(count),
                        labels((("db", f"db{db}"), ("key", pattern))),
                    )
    finally:
        if dbs:
            await round_trip((("SELECT", str(home_db)),))


async def add_sizes(out: Exposition, round_trip: RoundTrip, db: str, names: list[bytes]) -> None:
    types = await round_trip([("TYPE", text(n)) for n in names])
    commands: list[tuple[str, ...]] = []
    for name, kind in zip(names, types, strict=True):
        key, kind_text = text(name), text(kind)
        if kind_text == "string":
            # A HyperLogLog is a string too: PFCOUNT answers for those, STRLEN for the rest.
            commands += [("PFCOUNT", key), ("STRLEN", key), ("GET", key)]
        elif kind_text in _SIZE_COMMAND:
            commands.append((_SIZE_COMMAND[kind_text], key))
    replies = iter(await round_trip(commands)) if commands else iter(())
    for name, kind in zip(names, types, strict=True):
        key, kind_text = text(name), text(kind)
        lbl = labels((("db", db), ("key", key)))
        if kind_text == "string":
            pfcount, strlen, value = next(replies), next(replies), next(replies)
            size = pfcount if isinstance(pfcount, int) else strlen
            if isinstance(size, int):
                out.put(KEY_SIZE, float(size), lbl)
            try:
                out.put(KEY_VALUE, float(value), lbl)
            except (TypeError, ValueError):
                # Not a number: the text goes in a label, as redis_exporter does.
                out.put(
                    KEY_VALUE_AS_STRING,
                    1.0,
                    labels((("db", db), ("key", key), ("val", text(value)))),
                )
        elif kind_text in _SIZE_COMMAND:
            size = next(replies)
            if isinstance(size, int):
                out.put(KEY_SIZE, float(size), lbl)
        elif kind_text == "none":  # a --check-single-keys key that does not exist (yet)
            out.put(KEY_SIZE, 0.0, lbl)
