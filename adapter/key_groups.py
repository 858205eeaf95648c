"""--check-key-groups: count and memory of the keys each Lua pattern groups, per database.

As redis_exporter 1.45 does it (exporter/key_groups.go): a Lua script SCANs a batch of keys,
asks MEMORY USAGE of each, and puts each key in the group named by the captures of the first
pattern that matches (string.find, so Lua patterns, not regexes), or in "unclassified". Per
database, at most --max-distinct-key-groups groups by memory are reported, the rest summed
into "overflow". Every database gets number_of_distinct_key_groups, and the scrape gets
last_key_groups_scrape_duration_milliseconds (0 when no groups are configured).

All databases' first batches go in one pipelined round trip (SELECT, EVALSHA per database);
only databases whose SCAN cursor has not come back to 0 need more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from adapter.keys import RoundTrip, text
from adapter.scripts import Script, with_scripts
from podkit.exposition import Exposition, gauge, labels

log = logging.getLogger(__name__)

COUNT = gauge("key_group_count", "Count of keys in key group")
MEMORY = gauge("key_group_memory_usage_bytes", "Total memory usage of key group in bytes")
DISTINCT = gauge("number_of_distinct_key_groups", "Number of distinct key groups")
DURATION = gauge(
    "last_key_groups_scrape_duration_milliseconds",
    "Duration of the last key group metrics scrape in milliseconds",
)

# ARGV: cursor, COUNT hint, then the patterns. Returns {next cursor, {{group, keys, bytes}...}}.
GROUP_SCRIPT = Script(
    """
for i = 3, #ARGV do
  local ok, err = pcall(string.find, " ", ARGV[i])
  if not ok then error(err .. ARGV[i]) end
end
local scanned = redis.call("SCAN", ARGV[1], "COUNT", ARGV[2])
local totals, order = {}, {}
for _, key in ipairs(scanned[2]) do
  local bytes = redis.call("MEMORY", "USAGE", key) or 0
  local name = "unclassified"
  for i = 3, #ARGV do
    local found = {string.find(key, ARGV[i])}
    if found[1] ~= nil then
      name = table.concat({unpack(found, 3, #found)}, "")
      break
    end
  end
  local t = totals[name]
  if t == nil then
    totals[name] = {1, bytes}
    order[#order + 1] = name
  else
    t[1], t[2] = t[1] + 1, t[2] + bytes
  end
end
local groups = {}
for _, name in ipairs(order) do
  groups[#groups + 1] = {name, totals[name][1], totals[name][2]}
end
return {scanned[1], groups}
""",
    "key groups",
)


class Group(NamedTuple):
    name: str
    keys: int
    memory: int


def top_groups(totals: dict[str, list[int]], limit: int) -> tuple[list[Group], int]:
    """The groups to report and how many distinct ones there were, with the overflow rule:
    above `limit`, the `limit` largest by memory (then fewest keys, then name) and one
    "overflow" group summing the rest."""
    groups = [Group(name, c, m) for name, (c, m) in totals.items()]
    if len(groups) <= limit:
        return groups, len(groups)
    groups.sort(key=lambda g: (-g.memory, g.keys, g.name))
    rest = groups[limit:]
    overflow = Group("overflow", sum(g.keys for g in rest), sum(g.memory for g in rest))
    return [*groups[:limit], overflow], len(groups)


def _merge(totals: dict[str, list[int]], reply: Any) -> bytes:
    """Adds one script reply's groups to `totals`; returns the next SCAN cursor."""
    if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
        raise ValueError("invalid reply from the key group script")
    for name, count, memory in reply[1]:
        entry = totals.setdefault(text(name), [0, 0])
        entry[0] += int(count)
        entry[1] += int(memory)
    return text(reply[0]).encode()


async def add_key_group_metrics(
    out: Exposition,
    round_trip: RoundTrip,
    *,
    patterns: Sequence[str],
    max_groups: int,
    db_count: int,
    batch: int,
    home_db: int,
) -> None:
    started = time.perf_counter()
    if patterns:
        try:
            await _collect(out, round_trip, patterns, max_groups, db_count, batch)
        finally:
            await round_trip((("SELECT", str(home_db)),))
    millis = int((time.perf_counter() - started) * 1000)  # Go's Duration.Milliseconds()
    out.put(DURATION, float(millis))


async def _collect(
    out: Exposition,
    round_trip: RoundTrip,
    patterns: Sequence[str],
    max_groups: int,
    db_count: int,
    batch: int,
) -> None:
    totals: dict[int, dict[str, list[int]]] = {db: {} for db in range(db_count)}
    cursors: dict[int, bytes] = dict.fromkeys(totals, b"0")
    failed: set[int] = set()
    while cursors:
        commands: list[tuple[str, ...]] = []
        for db, cursor in cursors.items():
            commands += [
                ("SELECT", str(db)),
                GROUP_SCRIPT.call("0", text(cursor), str(batch), *patterns),
            ]
        replies = await with_scripts(round_trip, commands, (GROUP_SCRIPT,))
        next_cursors: dict[int, bytes] = {}
        for (db, _), selected, reply in zip(
            cursors.items(), replies[::2], replies[1::2], strict=True
        ):
            try:
                if isinstance(selected, Exception):
                    raise ValueError(f"cannot select it: {selected}")
                if isinstance(reply, Exception):
                    raise ValueError(str(reply))
                cursor = _merge(totals[db], reply)
            except ValueError as exc:
                log.error("key groups of db%d: %s", db, exc)
                failed.add(db)
                continue
            if cursor != b"0":
                next_cursors[db] = cursor
        cursors = next_cursors
    for db, groups in totals.items():
        if db in failed:
            continue
        shown, distinct = top_groups(groups, max_groups)
        for group in shown:
            lbl = labels((("db", f"db{db}"), ("key_group", group.name)))
            out.put(COUNT, float(group.keys), lbl)
            out.put(MEMORY, float(group.memory), lbl)
        out.put(DISTINCT, float(distinct), labels((("db", f"db{db}"),)))
