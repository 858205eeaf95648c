"""INFO's plain numeric fields → metric families, as data: a table from field to name, type
and scale, as redis_exporter's metricMapGauges/metricMapCounters (exporter/exporter.go).
A mistyped field would silently yield nothing, so a test against a real Redis
(tests/integration/adapter/test_against_redis_exporter.py) checks that every field it maps
does appear. adapter.info walks INFO's sections through it."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from podkit.exposition import Family, gauge


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

# Exported only with --include-system-metrics, as redis_exporter does.
SYSTEM_FIELDS: dict[str, Field] = {
    "total_system_memory": _g("total_system_memory_bytes", "Memory of the host in bytes"),
}

WITH_SYSTEM_FIELDS = {**FIELDS, **SYSTEM_FIELDS}


@cache
def cluster_field(key: str) -> Field:
    """A cluster_* field the table does not name: redis_exporter exports every one as is."""
    return _g(key)
