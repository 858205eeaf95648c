"""LATENCY LATEST → latency_spike_last and latency_spike_duration_seconds per event."""

from __future__ import annotations

from typing import Any

from adapter.exposition import Exposition, gauge, labels

COMMANDS = (("LATENCY", "LATEST"),)

SPIKE_LAST = gauge("latency_spike_last", "When the latency spike last occurred")
SPIKE_DURATION = gauge(
    "latency_spike_duration_seconds", "Length of the last latency spike in seconds"
)


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
