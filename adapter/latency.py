"""LATENCY LATEST → latency_spike_last and latency_spike_duration_seconds per event;
LATENCY HISTOGRAM (Redis 7) → the commands_latencies_usec histogram per command.

The histogram is what redis_exporter releases after 1.45 export (exporter/latency.go there):
Redis' cumulative power-of-two buckets in microseconds, `+Inf` and `_count` the command's
calls, `_sum` its `usec` from INFO commandstats — summed over every command whose name
*starts with* the histogram's name, as redis_exporter sums it (so `get`'s sum includes
`getdel` and `getex`). 1.45 itself has no histogram, so it is off unless
`--exclude-latency-histogram-metrics=false`.
"""

from __future__ import annotations

import re
from typing import Any

from adapter.info import Sections
from adapter.keys import text
from podkit.exposition import Exposition, Family, gauge, go_float, labels

COMMANDS = (("LATENCY", "LATEST"),)
HISTOGRAM_COMMANDS = (("LATENCY", "HISTOGRAM"),)

SPIKE_LAST = gauge("latency_spike_last", "When the latency spike last occurred")
SPIKE_DURATION = gauge(
    "latency_spike_duration_seconds", "Length of the last latency spike in seconds"
)
HISTOGRAM = Family("commands_latencies_usec", "histogram", "A histogram of latencies per command")

_USEC = re.compile(r"usec=([0-9]+)")
_GO_NAME = re.compile(r"[a-zA-Z0-9|]+")  # the names redis_exporter's regexp reads


def add_latency(out: Exposition, latest: Any) -> None:
    if not isinstance(latest, list):
        return
    # Each entry: [event name, unix time of the latest spike, latest ms, all-time max ms]
    for entry in latest:
        if not isinstance(entry, list) or len(entry) < 3:
            continue
        event = (
            entry[0].decode("utf-8", "replace") if isinstance(entry[0], bytes) else str(entry[0])
        )
        lbl = labels((("event_name", event),))
        out.put(SPIKE_LAST, float(entry[1]), lbl)
        out.put(SPIKE_DURATION, int(entry[2]) / 1000, lbl)


def total_usec(sections: Sections, cmd: str) -> int:
    """The `usec` of every commandstats entry whose name starts with `cmd`, summed."""
    total = 0
    for key, value in sections.get("commandstats", {}).items():
        name = key[8:]
        if key.startswith("cmdstat_") and name.startswith(cmd) and _GO_NAME.fullmatch(name):
            found = _USEC.search(value)
            if found:
                total += int(found.group(1))
    return total


def add_histogram(out: Exposition, reply: Any, sections: Sections) -> None:
    """LATENCY HISTOGRAM's [cmd, [calls, n, histogram_usec, [usec, count, ...]], ...]."""
    if not isinstance(reply, list):
        return  # Redis < 7 or refused: nothing, as redis_exporter (it logs once)
    for i in range(0, len(reply) - 1, 2):
        cmd, details = text(reply[i]), reply[i + 1]
        if not isinstance(details, list) or len(details) < 4:
            break
        calls, buckets = details[1], details[3]
        if not isinstance(calls, int) or not isinstance(buckets, list):
            break
        pairs = sorted(
            (int(buckets[j]), int(buckets[j + 1])) for j in range(0, len(buckets) - 1, 2)
        )
        for usec, count in pairs:
            le = labels((("cmd", cmd), ("le", go_float(usec))))
            out.put(HISTOGRAM, count, le, suffix="_bucket")
        out.put(HISTOGRAM, calls, labels((("cmd", cmd), ("le", "+Inf"))), suffix="_bucket")
        lbl = labels((("cmd", cmd),))
        out.put(HISTOGRAM, float(total_usec(sections, cmd)), lbl, suffix="_sum")
        out.put(HISTOGRAM, calls, lbl, suffix="_count")
