"""--check-streams and --check-single-streams: XINFO of streams, their groups and consumers.

Names, labels and values are redis_exporter 1.45's (exporter/streams.go): a stream id
becomes the float of its millisecond part, a consumer's idle time is in seconds. A stream
that does not exist, or a key that is no stream, is logged and skipped, as there.

Three pipelined round trips after the scrape's main one, however many streams: the SCANs of
the patterns, then XINFO STREAM and XINFO GROUPS of every stream, then XINFO CONSUMERS of
every group.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from adapter.keys import KeySpec, RoundTrip, scan_or_log, text
from podkit.exposition import Exposition, gauge, labels

log = logging.getLogger(__name__)

LENGTH = gauge("stream_length", "The number of elements of the stream")
RADIX_TREE_KEYS = gauge("stream_radix_tree_keys", "Radix tree keys count")
RADIX_TREE_NODES = gauge("stream_radix_tree_nodes", "Radix tree nodes count")
LAST_GENERATED_ID = gauge(
    "stream_last_generated_id", "The epoch timestamp (ms) of the latest message on the stream"
)
GROUPS = gauge("stream_groups", "Groups count of stream")
GROUP_CONSUMERS = gauge("stream_group_consumers", "Consumers count of stream group")
GROUP_PENDING = gauge(
    "stream_group_messages_pending", "Pending number of messages in that stream group"
)
GROUP_LAST_DELIVERED_ID = gauge(
    "stream_group_last_delivered_id", "The epoch timestamp (ms) of the last delivered message"
)
CONSUMER_PENDING = gauge(
    "stream_group_consumer_messages_pending",
    "Pending number of messages for this specific consumer",
)
CONSUMER_IDLE = gauge("stream_group_consumer_idle_seconds", "Consumer idle time in seconds")


def stream_id_ms(value: Any) -> float:
    """'1700000000000-3' → 1700000000000.0 (the part before '-'; 0 when unparsable)."""
    try:
        return float(text(value).split("-", 1)[0])
    except ValueError:
        return 0.0


def as_map(reply: Any) -> dict[str, Any]:
    """A flat RESP2 [name, value, name, value, ...] reply as a dict."""
    if not isinstance(reply, list):
        return {}
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int) else 0.0


async def _targets(
    round_trip: RoundTrip, patterns: Sequence[KeySpec], singles: Sequence[KeySpec], batch: int
) -> list[tuple[int, str]]:
    """Single streams first, then the keys the patterns match (redis_exporter's order)."""
    found: list[tuple[int, str]] = list(singles)
    for db in sorted({db for db, _ in patterns}):
        (selected,) = await round_trip((("SELECT", str(db)),))
        if isinstance(selected, Exception):
            log.error("couldn't select database %d when getting stream info: %s", db, selected)
            continue
        for d, pattern in patterns:
            if d == db:
                found.extend((db, text(k)) for k in await scan_or_log(round_trip, pattern, batch))
    return list(dict.fromkeys(found))  # a stream named twice is reported once


async def add_stream_metrics(
    out: Exposition,
    round_trip: RoundTrip,
    *,
    patterns: Sequence[KeySpec],
    singles: Sequence[KeySpec],
    batch: int,
    home_db: int,
) -> None:
    try:
        streams = await _targets(round_trip, patterns, singles, batch)
        commands: list[tuple[str, ...]] = []
        db = None
        for stream_db, key in streams:
            if stream_db != db:
                commands.append(("SELECT", str(stream_db)))
                db = stream_db
            commands += [("XINFO", "STREAM", key), ("XINFO", "GROUPS", key)]
        replies = iter(await round_trip(commands)) if commands else iter(())
        infos: list[tuple[int, str, dict[str, Any], list[dict[str, Any]]]] = []
        db = None
        for stream_db, key in streams:
            if stream_db != db:
                next(replies)  # SELECT
                db = stream_db
            stream, groups = next(replies), next(replies)
            for reply in (stream, groups):
                if isinstance(reply, Exception):
                    log.error("couldn't get info for stream %r: %s", key, reply)
                    break
            else:
                group_maps = [as_map(g) for g in groups] if isinstance(groups, list) else []
                infos.append((stream_db, key, as_map(stream), group_maps))
        await _add_consumers(out, round_trip, infos)
    finally:
        if patterns or singles:
            await round_trip((("SELECT", str(home_db)),))


async def _add_consumers(
    out: Exposition,
    round_trip: RoundTrip,
    infos: list[tuple[int, str, dict[str, Any], list[dict[str, Any]]]],
) -> None:
    commands: list[tuple[str, ...]] = []
    db = None
    for stream_db, key, _, groups in infos:
        if groups and stream_db != db:
            commands.append(("SELECT", str(stream_db)))
            db = stream_db
        commands += [("XINFO", "CONSUMERS", key, text(g.get("name", ""))) for g in groups]
    replies = iter(await round_trip(commands)) if commands else iter(())
    db = None
    for stream_db, key, stream, groups in infos:
        if groups and stream_db != db:
            next(replies)  # SELECT
            db = stream_db
        lbl = labels((("db", f"db{stream_db}"), ("stream", key)))
        out.put(LENGTH, _number(stream.get("length")), lbl)
        out.put(RADIX_TREE_KEYS, _number(stream.get("radix-tree-keys")), lbl)
        out.put(RADIX_TREE_NODES, _number(stream.get("radix-tree-nodes")), lbl)
        out.put(LAST_GENERATED_ID, stream_id_ms(stream.get("last-generated-id", b"")), lbl)
        out.put(GROUPS, _number(stream.get("groups")), lbl)
        for group in groups:
            name = text(group.get("name", ""))
            glbl = labels((("db", f"db{stream_db}"), ("stream", key), ("group", name)))
            out.put(GROUP_CONSUMERS, _number(group.get("consumers")), glbl)
            out.put(GROUP_PENDING, _number(group.get("pending")), glbl)
            out.put(
                GROUP_LAST_DELIVERED_ID, stream_id_ms(group.get("last-delivered-id", b"")), glbl
            )
            consumers = next(replies)
            if not isinstance(consumers, list):
                log.error("couldn't get consumers of group %r of stream %r", name, key)
                continue
            for consumer in map(as_map, consumers):
                clbl = labels(
                    (
                        ("db", f"db{stream_db}"),
                        ("stream", key),
                        ("group", name),
                        ("consumer", text(consumer.get("name", ""))),
                    )
                )
                out.put(CONSUMER_PENDING, _number(consumer.get("pending")), clbl)
                out.put(CONSUMER_IDLE, _number(consumer.get("idle")) / 1e3, clbl)
