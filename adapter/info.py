"""INFO ALL → metrics, with redis_exporter's names, types and labels.

The text is parsed into sections; their plain numeric fields become metrics through the
table in adapter.info_fields. Sections whose lines are not plain numbers (Keyspace,
Commandstats, Latencystats, Errorstats, replica lines) have their own small parsers below.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from adapter.info_fields import FIELDS, WITH_SYSTEM_FIELDS, cluster_field
from podkit.exposition import Exposition, Family, escape_label, format_value, gauge, labels

Sections = dict[str, dict[str, str]]

COMMANDS = (("INFO", "ALL"),)
FALLBACK_COMMANDS = (("INFO",),)  # servers that refuse INFO ALL


# Families filled from INFO's structured lines, each declared once.
START_TIME = Family(
    "start_time_seconds", "gauge", "Start time of the Redis instance since unix epoch in seconds."
)
INSTANCE_INFO = Family("instance_info", "gauge", "Information about the Redis instance")
SLAVE_INFO = Family("slave_info", "gauge", "Information about the Redis slave")
MASTER_LINK_UP = Family("master_link_up", "gauge", "Master link status on Redis slave")
SLAVE_OFFSET = Family("connected_slave_offset_bytes", "gauge", "Offset of connected slave")
SLAVE_LAG = Family("connected_slave_lag_seconds", "gauge", "Lag of connected slave")
DB_KEYS = Family("db_keys", "gauge", "Total number of keys by DB")
DB_KEYS_EXPIRING = Family("db_keys_expiring", "gauge", "Total number of expiring keys by DB")
DB_AVG_TTL = Family("db_avg_ttl_seconds", "gauge", "Avg TTL in seconds")
COMMAND_CALLS = Family("commands_total", "counter", "Total number of calls per command")
COMMANDS_DURATION = Family(
    "commands_duration_seconds_total",
    "counter",
    "Total amount of time in seconds spent per command",
)
COMMANDS_REJECTED = Family(
    "commands_rejected_calls_total", "counter", "commands_rejected_calls_total metric"
)
COMMANDS_FAILED = Family(
    "commands_failed_calls_total", "counter", "commands_failed_calls_total metric"
)
LATENCY_PERCENTILES = Family(
    "latency_percentiles_usec", "summary", "latency_percentiles_usec metric"
)
ERRORS = Family("errors_total", "counter", "Total number of errors per error type")

# The replica-side link gauges, named for the INFO field they come from.
MASTER_LAST_IO = gauge("master_last_io_seconds_ago")
MASTER_SYNC = gauge("master_sync_in_progress")
SLAVE_REPL_OFFSET = gauge("slave_repl_offset")

# Sections whose lines are handled by their own parsers, not by FIELDS.
_SPECIAL = frozenset({"keyspace", "commandstats", "latencystats", "errorstats", "sentinel"})
_STATUS = {"ok": 1.0, "true": 1.0, "err": 0.0, "fail": 0.0, "false": 0.0}
_SLAVE = re.compile(r"slave\d+$")
_MASTER_DIRECT = re.compile(
    r"(master(_[0-9]+)?_(last_io_seconds_ago|sync_in_progress)|slave_repl_offset)$"
)
_MASTER_LINK = re.compile(r"master(_[0-9]+)?_link_status$")
_MASTER_HOST = re.compile(r"master(_[0-9]+)?_host$")
_MASTER_PORT = re.compile(r"master(_[0-9]+)?_port$")

INSTANCE_INFO_LABELS = (
    "role",
    "redis_version",
    "redis_build_id",
    "redis_mode",
    "os",
    "maxmemory_policy",
    "tcp_port",
    "run_id",
    "process_id",
)


def parse_info(text: str) -> Sections:
    """INFO text → {section (lower case): {field: value}}, in the order Redis sent them."""
    sections: Sections = {}
    current: dict[str, str] = sections.setdefault("", {})
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        if line[0] == "#":
            current = sections.setdefault(line[1:].strip().lower(), {})
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key] = value
    return sections


def number(value: str) -> float | None:
    """An INFO value as a float: plain numbers, and ok/err style status words."""
    status = _STATUS.get(value)
    if status is not None:
        return status
    try:
        return float(value)
    except ValueError:
        return None


def add_info_fields(out: Exposition, sections: Sections, *, include_system: bool) -> None:
    fields = WITH_SYSTEM_FIELDS if include_system else FIELDS
    put = out.put
    for section, values in sections.items():
        if section in _SPECIAL:
            continue
        for key, raw in values.items():
            field = fields.get(key)
            if field is None:
                if key.startswith("cluster_"):
                    field = cluster_field(key)
                else:
                    continue
            value = number(raw)
            if value is not None:
                put(field.family, value * field.scale)


def add_server(out: Exposition, sections: Sections, now: float | None = None) -> str:
    """start_time_seconds, instance_info and slave_info. Returns the instance's role."""
    server = sections.get("server", {})
    replication = sections.get("replication", {})
    uptime = number(server.get("uptime_in_seconds", ""))
    if uptime is not None:
        now = int(time.time()) if now is None else now
        out.put(
            START_TIME,
            now - uptime,
        )
    merged = {**server, **sections.get("memory", {}), **replication}
    role = merged.get("role", "")
    mode = merged.get("redis_mode") or merged.get("server_mode", "")
    values = {**merged, "redis_mode": mode}
    out.put(
        INSTANCE_INFO,
        1.0,
        labels((name, values.get(name, "")) for name in INSTANCE_INFO_LABELS),
    )
    if role == "slave":
        out.put(
            SLAVE_INFO,
            1.0,
            labels(
                (
                    ("master_host", replication.get("master_host", "")),
                    ("master_port", replication.get("master_port", "")),
                    ("read_only", replication.get("slave_read_only", "")),
                )
            ),
        )
    return role


def add_replication(out: Exposition, sections: Sections) -> None:
    """Replica-side link metrics and, on a master, one series per connected replica."""
    host = port = ""
    for key, value in sections.get("replication", {}).items():
        if _MASTER_HOST.match(key):
            host = value
        elif _MASTER_PORT.match(key):
            port = value
        elif _MASTER_LINK.match(key):
            out.put(
                MASTER_LINK_UP,
                1.0 if value == "up" else 0.0,
                labels((("master_host", host), ("master_port", port))),
            )
        elif _MASTER_DIRECT.match(key):
            family = SLAVE_REPL_OFFSET
            if key.endswith("last_io_seconds_ago"):
                family = MASTER_LAST_IO
            elif key.endswith("sync_in_progress"):
                family = MASTER_SYNC
            val = number(value)
            out.put(
                family,
                float(int(val)) if val is not None else 0.0,
                labels((("master_host", host), ("master_port", port))),
            )
        elif _SLAVE.match(key):
            _add_connected_replica(out, value)


def _add_connected_replica(out: Exposition, value: str) -> None:
    # slave0:ip=10.0.0.1,port=6379,state=online,offset=1751844676,lag=0
    fields = dict(part.partition("=")[::2] for part in value.split(","))
    offset = number(fields.get("offset", ""))
    if offset is None:
        return
    lbl = labels(
        (
            ("slave_ip", fields.get("ip", "")),
            ("slave_port", fields.get("port", "")),
            ("slave_state", fields.get("state", "")),
        )
    )
    out.put(SLAVE_OFFSET, offset, lbl)
    lag = number(fields["lag"]) if "lag" in fields else None
    if lag is not None:
        out.put(SLAVE_LAG, lag, lbl)


def add_keyspace(out: Exposition, sections: Sections, db_count: int) -> None:
    """db_keys, db_keys_expiring, db_avg_ttl_seconds; zeros for empty databases."""
    seen = set()
    for db, value in sections.get("keyspace", {}).items():
        if not db.startswith("db"):
            continue
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        keys, expires = number(fields.get("keys", "")), number(fields.get("expires", ""))
        if keys is None or expires is None:
            continue
        lbl = labels((("db", db),))
        out.put(DB_KEYS, keys, lbl)
        out.put(DB_KEYS_EXPIRING, expires, lbl)
        ttl = number(fields.get("avg_ttl", ""))
        if ttl is not None:
            out.put(DB_AVG_TTL, ttl / 1000, lbl)
        seen.add(db)
    for index in range(db_count):
        db = f"db{index}"
        if db not in seen:
            lbl = labels((("db", db),))
            out.put(DB_KEYS, 0.0, lbl)
            out.put(DB_KEYS_EXPIRING, 0.0, lbl)


def add_commandstats(out: Exposition, sections: Sections) -> None:
    """Per-command calls, time, rejected and failed calls; latency percentiles as a summary."""
    put = out.put
    calls_sum: dict[str, tuple[str, float, str]] = {}
    for key, value in sections.get("commandstats", {}).items():
        if not key.startswith("cmdstat_"):
            continue
        cmd = key[8:]
        parts = value.split(",")
        if len(parts) < 3:
            continue
        calls, usec = _kv_number(parts[0]), _kv_number(parts[1])
        if calls is None or usec is None:
            continue
        lbl = f'{{cmd="{escape_label(cmd)}"}}'
        put(COMMAND_CALLS, calls, lbl)
        put(COMMANDS_DURATION, usec / 1e6, lbl)
        calls_sum[cmd] = (format_value(calls), usec, lbl)
        if len(parts) >= 5:
            rejected, failed = _kv_number(parts[3]), _kv_number(parts[4])
            if rejected is not None and failed is not None:
                put(COMMANDS_REJECTED, rejected, lbl)
                put(COMMANDS_FAILED, failed, lbl)
    for key, value in sections.get("latencystats", {}).items():
        prefix, _, cmd = key.partition("latency_percentiles_usec_")
        if prefix or cmd not in calls_sum:
            continue
        count, usec, lbl = calls_sum[cmd]
        quantiles = []
        for part in value.split(","):
            name, _, val = part.partition("=")
            q, v = _quantile(name), number(val)
            if q is None or v is None:
                break
            quantiles.append((q, v))
        else:
            cmd_label = lbl[:-1]  # '{cmd="get"' + ',quantile="…"}'
            for q_text, v in quantiles:
                put(LATENCY_PERCENTILES, v, f'{cmd_label},quantile="{q_text}"}}')
            put(LATENCY_PERCENTILES, usec, lbl, suffix="_sum")
            put(LATENCY_PERCENTILES, count, lbl, suffix="_count")


@lru_cache(maxsize=64)
def _quantile(name: str) -> str | None:
    """'p99.9' → '99.9', the quantile label (the percentiles are few and fixed by config)."""
    q = number(name[1:])
    return None if q is None else format_value(q)


def add_errorstats(out: Exposition, sections: Sections) -> None:
    for key, value in sections.get("errorstats", {}).items():
        if key.startswith("errorstat_"):
            count = _kv_number(value)
            if count is not None:
                out.put(
                    ERRORS,
                    count,
                    labels((("err", key[10:]),)),
                )


def _kv_number(part: str) -> float | None:
    _, sep, value = part.partition("=")
    return number(value) if sep else None
