"""INFO ALL → metrics, with redis_exporter's names, types and labels.

The mapping is data (FIELDS), as in redis_exporter's metricMapGauges/metricMapCounters; a
test against a real Redis checks that the fields it maps do appear. Sections whose lines are
not plain numbers (Keyspace, Commandstats, Latencystats, Errorstats, replica lines) have
their own small parsers below.
"""

from __future__ import annotations

import re
import time
from functools import cache, lru_cache
from typing import NamedTuple

from adapter.exposition import Exposition, Family, escape_label, format_value, gauge, labels

Sections = dict[str, dict[str, str]]

COMMANDS = (("INFO", "ALL"),)
FALLBACK_COMMANDS = (("INFO",),)  # servers that refuse INFO ALL


class Field(NamedTuple):
    """An INFO field's family, and the factor its value is multiplied by."""

    family: Family
    scale: float = 1.0


def _g(name: str, help_text: str = "", scale: float = 1.0) -> Field:
    return Field(gauge(name, help_text), scale)


def _c(name: str, help_text: str = "") -> Field:
    return Field(Family(name, "counter", help_text or f"{name} metric"))


# INFO field → metric (without the namespace). Names and types are redis_exporter 1.45's.
FIELDS: dict[str, Field] = {
    # Server
    "uptime_in_seconds": _g("uptime_in_seconds", "Seconds since the Redis server started"),
    "process_id": _g("process_id", "Process id of the Redis server"),
    "io_threads_active": _g("io_threads_active", "Whether I/O threads are active"),
    # Clients
    "connected_clients": _g("connected_clients", "Client connections (excluding replicas)"),
    "blocked_clients": _g("blocked_clients", "Clients pending on a blocking call"),
    "tracking_clients": _g("tracking_clients", "Clients being tracked (client-side caching)"),
    "clients_in_timeout_table": _g("clients_in_timeout_table"),
    "cluster_connections": _g("cluster_connections"),
    "client_longest_output_list": _g("client_longest_output_list"),
    "client_biggest_input_buf": _g("client_biggest_input_buf"),
    "client_recent_max_output_buffer": _g("client_recent_max_output_buffer_bytes"),
    "client_recent_max_input_buffer": _g("client_recent_max_input_buffer_bytes"),
    # Memory
    "used_memory": _g("memory_used_bytes", "Bytes allocated by Redis"),
    "used_memory_rss": _g("memory_used_rss_bytes", "Resident set size of Redis in bytes"),
    "used_memory_peak": _g("memory_used_peak_bytes", "Peak memory consumed by Redis in bytes"),
    "used_memory_lua": _g("memory_used_lua_bytes", "Bytes used by the Lua engine"),
    "used_memory_overhead": _g("memory_used_overhead_bytes"),
    "used_memory_startup": _g("memory_used_startup_bytes"),
    "used_memory_dataset": _g("memory_used_dataset_bytes"),
    "used_memory_scripts": _g("memory_used_scripts_bytes"),
    "number_of_cached_scripts": _g("number_of_cached_scripts"),
    "maxmemory": _g("memory_max_bytes", "The maxmemory setting in bytes (0: no limit)"),
    "maxmemory_reservation": _g("memory_max_reservation_bytes"),
    "maxmemory_desired_reservation": _g("memory_max_reservation_desired_bytes"),
    "maxfragmentationmemory_reservation": _g("memory_max_fragmentation_reservation_bytes"),
    "maxfragmentationmemory_desired_reservation": _g(
        "memory_max_fragmentation_reservation_desired_bytes"
    ),
    "allocator_active": _g("allocator_active_bytes"),
    "allocator_allocated": _g("allocator_allocated_bytes"),
    "allocator_resident": _g("allocator_resident_bytes"),
    "allocator_frag_ratio": _g("allocator_frag_ratio"),
    "allocator_frag_bytes": _g("allocator_frag_bytes"),
    "allocator_rss_ratio": _g("allocator_rss_ratio"),
    "allocator_rss_bytes": _g("allocator_rss_bytes"),
    "mem_fragmentation_ratio": _g("mem_fragmentation_ratio"),
    "mem_fragmentation_bytes": _g("mem_fragmentation_bytes"),
    "mem_clients_slaves": _g("mem_clients_slaves"),
    "mem_clients_normal": _g("mem_clients_normal"),
    "mem_not_counted_for_evict": _g("mem_not_counted_for_eviction_bytes"),
    "expired_stale_perc": _g("expired_stale_percentage"),
    "lazyfree_pending_objects": _g("lazyfree_pending_objects"),
    "active_defrag_running": _g("active_defrag_running"),
    "migrate_cached_sockets": _g("migrate_cached_sockets_total"),
    "active_defrag_hits": _g("defrag_hits"),
    "active_defrag_misses": _g("defrag_misses"),
    "active_defrag_key_hits": _g("defrag_key_hits"),
    "active_defrag_key_misses": _g("defrag_key_misses"),
    "expired_time_cap_reached_count": _g("expired_time_cap_reached_total"),
    # Persistence
    "loading": _g("loading_dump_file"),
    "rdb_changes_since_last_save": _g("rdb_changes_since_last_save"),
    "rdb_bgsave_in_progress": _g("rdb_bgsave_in_progress"),
    "rdb_last_save_time": _g("rdb_last_save_timestamp_seconds"),
    "rdb_last_bgsave_status": _g("rdb_last_bgsave_status"),
    "rdb_last_bgsave_time_sec": _g("rdb_last_bgsave_duration_sec"),
    "rdb_current_bgsave_time_sec": _g("rdb_current_bgsave_duration_sec"),
    "rdb_last_cow_size": _g("rdb_last_cow_size_bytes"),
    "aof_enabled": _g("aof_enabled"),
    "aof_rewrite_in_progress": _g("aof_rewrite_in_progress"),
    "aof_rewrite_scheduled": _g("aof_rewrite_scheduled"),
    "aof_last_rewrite_time_sec": _g("aof_last_rewrite_duration_sec"),
    "aof_current_rewrite_time_sec": _g("aof_current_rewrite_duration_sec"),
    "aof_last_cow_size": _g("aof_last_cow_size_bytes"),
    "aof_current_size": _g("aof_current_size_bytes"),
    "aof_base_size": _g("aof_base_size_bytes"),
    "aof_pending_rewrite": _g("aof_pending_rewrite"),
    "aof_buffer_length": _g("aof_buffer_length"),
    "aof_rewrite_buffer_length": _g("aof_rewrite_buffer_length"),
    "aof_pending_bio_fsync": _g("aof_pending_bio_fsync"),
    "aof_delayed_fsync": _g("aof_delayed_fsync"),
    "aof_last_bgrewrite_status": _g("aof_last_bgrewrite_status"),
    "aof_last_write_status": _g("aof_last_write_status"),
    "module_fork_in_progress": _g("module_fork_in_progress"),
    "module_fork_last_cow_size": _g("module_fork_last_cow_size"),
    # Stats
    "total_connections_received": _c("connections_received_total", "Connections accepted"),
    "total_commands_processed": _c("commands_processed_total", "Commands processed"),
    "rejected_connections": _c("rejected_connections_total", "Connections rejected (maxclients)"),
    "total_net_input_bytes": _c("net_input_bytes_total", "Bytes read from the network"),
    "total_net_output_bytes": _c("net_output_bytes_total", "Bytes written to the network"),
    "expired_keys": _c("expired_keys_total", "Key expiration events"),
    "evicted_keys": _c("evicted_keys_total", "Keys evicted because of maxmemory"),
    "keyspace_hits": _c("keyspace_hits_total", "Successful key lookups"),
    "keyspace_misses": _c("keyspace_misses_total", "Failed key lookups"),
    "pubsub_channels": _g("pubsub_channels"),
    "pubsub_patterns": _g("pubsub_patterns"),
    "latest_fork_usec": _g("latest_fork_seconds", "Duration of the latest fork in seconds", 1e-6),
    "tracking_total_keys": _g("tracking_total_keys"),
    "tracking_total_items": _g("tracking_total_items"),
    "tracking_total_prefixes": _g("tracking_total_prefixes"),
    "unexpected_error_replies": _c("unexpected_error_replies"),
    "total_error_replies": _c("total_error_replies"),
    "dump_payload_sanitizations": _c("dump_payload_sanitizations"),
    "total_reads_processed": _c("total_reads_processed"),
    "total_writes_processed": _c("total_writes_processed"),
    "io_threaded_reads_processed": _c("io_threaded_reads_processed"),
    "io_threaded_writes_processed": _c("io_threaded_writes_processed"),
    # Replication
    "connected_slaves": _g("connected_slaves", "Connected replicas"),
    "repl_backlog_size": _g("replication_backlog_bytes"),
    "repl_backlog_active": _g("repl_backlog_is_active"),
    "repl_backlog_first_byte_offset": _g("repl_backlog_first_byte_offset"),
    "repl_backlog_histlen": _g("repl_backlog_history_bytes"),
    "master_repl_offset": _g("master_repl_offset"),
    "second_repl_offset": _g("second_repl_offset"),
    "slave_expires_tracked_keys": _g("slave_expires_tracked_keys"),
    "slave_priority": _g("slave_priority"),
    "sync_full": _g("replica_resyncs_full"),
    "sync_partial_ok": _g("replica_partial_resync_accepted"),
    "sync_partial_err": _g("replica_partial_resync_denied"),
    # CPU
    "used_cpu_sys": _c("cpu_sys_seconds_total", "System CPU seconds used by Redis"),
    "used_cpu_user": _c("cpu_user_seconds_total", "User CPU seconds used by Redis"),
    "used_cpu_sys_children": _c("cpu_sys_children_seconds_total"),
    "used_cpu_user_children": _c("cpu_user_children_seconds_total"),
    "used_cpu_sys_main_thread": _c("cpu_sys_main_thread_seconds_total"),
    "used_cpu_user_main_thread": _c("cpu_user_main_thread_seconds_total"),
    # Cluster
    "cluster_stats_messages_sent": _g("cluster_messages_sent_total"),
    "cluster_stats_messages_received": _g("cluster_messages_received_total"),
    # KeyDB
    "server_threads": _g("server_threads_total"),
    "long_lock_waits": _g("long_lock_waits_total"),
    "current_client_thread": _g("current_client_thread"),
}

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

# Exported only with --include-system-metrics, as redis_exporter does.
SYSTEM_FIELDS: dict[str, Field] = {
    "total_system_memory": _g("total_system_memory_bytes", "Memory of the host in bytes"),
}

_WITH_SYSTEM = {**FIELDS, **SYSTEM_FIELDS}

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
    fields = _WITH_SYSTEM if include_system else FIELDS
    put = out.put
    for section, values in sections.items():
        if section in _SPECIAL:
            continue
        for key, raw in values.items():
            field = fields.get(key)
            if field is None:
                if key.startswith("cluster_"):
                    field = _cluster_field(key)
                else:
                    continue
            value = number(raw)
            if value is not None:
                put(field.family, value * field.scale)


@cache
def _cluster_field(key: str) -> Field:
    return _g(key)  # redis_exporter exports every cluster_* field as is


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
