"""A target that is a Sentinel: INFO's Sentinel section and SENTINEL MASTERS, CKQUORUM,
SENTINELS and SLAVES → the sentinel_* families, as redis_exporter 1.45 exports them
(exporter/sentinels.go of that release).

Names, help texts and labels are 1.45's, and so are its rules: a master counts its own
Sentinel among the okay ones (`ok_sentinels` starts at 1), a peer or replica whose flags
hold `s_down` or `o_down` is not okay, and a failed CKQUORUM is `0` with Redis' refusal as
the `message` label.

Round trips: the scrape that first sees a Sentinel asks SENTINEL MASTERS after INFO; once the
scraper knows its target is one, SENTINEL MASTERS rides in the main round trip. Then one more
round trip asks CKQUORUM, SENTINELS and SLAVES of every master at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adapter.info import Sections
from adapter.keys import RoundTrip, text
from podkit.exposition import Exposition, gauge, labels

MASTERS_COMMAND = ("SENTINEL", "MASTERS")

# INFO's Sentinel section: the numbers 1.45 exports as they are (strconv.Atoi).
INFO_FIELDS = {
    "sentinel_masters": gauge(
        "sentinel_masters", "The number of masters this sentinel is watching"
    ),
    "sentinel_tilt": gauge("sentinel_tilt", "Sentinel is in TILT mode"),
    "sentinel_running_scripts": gauge(
        "sentinel_running_scripts", "Number of scripts in execution right now"
    ),
    "sentinel_scripts_queue_length": gauge(
        "sentinel_scripts_queue_length", "Queue of user scripts to execute"
    ),
    "sentinel_simulate_failure_flags": gauge(
        "sentinel_simulate_failure_flags", "Failures simulations"
    ),
}
MASTER_STATUS = gauge("sentinel_master_status", "Master status on Sentinel")
MASTER_SLAVES = gauge("sentinel_master_slaves", "The number of slaves of the master")
MASTER_SENTINELS = gauge(
    "sentinel_master_sentinels", "The number of sentinels monitoring this master"
)
CKQUORUM = gauge("sentinel_master_ckquorum_status", "Master ckquorum status")
OK_SENTINELS = gauge(
    "sentinel_master_ok_sentinels", "The number of okay sentinels monitoring this master"
)
OK_SLAVES = gauge("sentinel_master_ok_slaves", "The number of okay slaves of the master")

_MASTER_LINE = re.compile(r"master\d+")


def is_sentinel(sections: Sections) -> bool:
    return "sentinel" in sections


def _go_atoi(value: str) -> float:
    """Go's strconv.Atoi with the error ignored: an integer, else 0."""
    try:
        return float(int(value.strip()))
    except ValueError:
        return 0.0


def add_info(out: Exposition, sections: Sections) -> None:
    """The Sentinel section of INFO: counters of the Sentinel and one line per master."""
    for key, value in sections.get("sentinel", {}).items():
        family = INFO_FIELDS.get(key)
        if family is not None:
            out.put(family, _go_atoi(value))
            continue
        if not _MASTER_LINE.match(key):
            continue
        # master0:name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1,sentinels=3
        fields = dict(part.split("=", 1) for part in value.split(",") if part.count("=") == 1)
        try:
            slaves, sentinels = float(fields["slaves"]), float(fields["sentinels"])
        except (KeyError, ValueError):
            continue
        name, status = fields.get("name", ""), fields.get("status", "")
        address = fields.get("address", "")
        pair = labels((("master_address", address), ("master_name", name)))
        out.put(
            MASTER_STATUS,
            1.0 if status == "ok" else 0.0,
            labels((("master_address", address), ("master_name", name), ("master_status", status))),
        )
        out.put(MASTER_SLAVES, slaves, pair)
        out.put(MASTER_SENTINELS, sentinels, pair)


def as_map(entry: Any) -> dict[str, str]:
    """One RESP2 [name, value, ...] entry of SENTINEL MASTERS/SENTINELS/SLAVES as a dict."""
    if not isinstance(entry, list):
        return {}
    return {text(entry[i]): text(entry[i + 1]) for i in range(0, len(entry) - 1, 2)}


def _okay(entries: Any) -> int:
    """Peers or replicas whose flags say neither subjectively nor objectively down."""
    if not isinstance(entries, list):
        return 0
    count = 0
    for entry in entries:
        flags = as_map(entry).get("flags")
        if flags is not None and "s_down" not in flags and "o_down" not in flags:
            count += 1
    return count


async def add_masters(out: Exposition, round_trip: RoundTrip, masters_reply: Any) -> None:
    """Per master: the CKQUORUM verdict and the okay peers and replicas."""
    if not isinstance(masters_reply, list):
        return  # refused (an ACL without SENTINEL): 1.45 exports nothing per master either
    masters: list[tuple[str, str]] = []
    for entry in masters_reply:
        fields = as_map(entry)
        if {"name", "ip", "port"} <= fields.keys():
            masters.append((fields["name"], f"{fields['ip']}:{fields['port']}"))
    if not masters:
        return
    commands: list[tuple[str, ...]] = []
    for name, _ in masters:
        commands += [
            ("SENTINEL", "CKQUORUM", name),
            ("SENTINEL", "SENTINELS", name),
            ("SENTINEL", "SLAVES", name),
        ]
    replies: Sequence[Any] = await round_trip(commands)
    for i, (name, address) in enumerate(masters):
        quorum, peers, replicas = replies[3 * i : 3 * i + 3]
        message = str(quorum) if isinstance(quorum, Exception) else text(quorum)
        out.put(
            CKQUORUM,
            0.0 if isinstance(quorum, Exception) else 1.0,
            labels((("master_name", name), ("message", message))),
        )
        pair = labels((("master_address", address), ("master_name", name)))
        out.put(OK_SENTINELS, float(1 + _okay(peers)), pair)
        out.put(OK_SLAVES, float(_okay(replicas)), pair)
