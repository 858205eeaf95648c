"""The adapter side by side with redis_exporter 1.45 (Debian) on the same Redis.

redis_exporter is the oracle: metric names, types, label names and values come from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import metrics
from support.processes import RedisServer, Service, adapter, redis_exporter
from support.redis_topology import Cluster, SentinelSet
from support.tools import require_binary

from adapter.info_fields import FIELDS

# Families redis_exporter has that the adapter does not, each for a reason (README):
NOT_EXPORTED = {
    "redis_exporter_build_info",  # it would claim to be redis_exporter: redis_adapter_build_info
}
GO_RUNTIME = re.compile(r"^(go_|promhttp_)")  # a Go process's own; the adapter has python_*
# The adapter's additions, all under names redis_exporter does not use.
ADDED = {
    "redis_adapter_build_info",
    "redis_adapter_scrape_errors_total",
    "python_info",
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
}

DASHBOARD_763 = [
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_commands_processed_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    "redis_commands_total",
]
MIXIN = ["redis_total_system_memory_bytes", "redis_memory_used_rss_bytes"]

# Mapped fields a standalone Redis 7.0 master without AOF does not report, each for a reason.
NOT_IN_REDIS_7_INFO = {
    # only while appendonly is on
    "aof_base_size",
    "aof_buffer_length",
    "aof_current_size",
    "aof_delayed_fsync",
    "aof_pending_bio_fsync",
    "aof_pending_rewrite",
    "aof_rewrite_buffer_length",
    # Redis < 5 names, renamed to client_recent_max_*
    "client_biggest_input_buf",
    "client_longest_output_list",
    # CLUSTER INFO, on cluster nodes
    "cluster_stats_messages_received",
    "cluster_stats_messages_sent",
    # KeyDB
    "current_client_thread",
    "long_lock_waits",
    "server_threads",
    # Redis Enterprise
    "maxfragmentationmemory_desired_reservation",
    "maxfragmentationmemory_reservation",
    "maxmemory_desired_reservation",
    "maxmemory_reservation",
    # replicas only
    "slave_priority",
}

KEY_ARGS = (
    "-check-keys",
    "db0=counter,db0=greeting,db0=queue,db0=visitors,db1=one:1*",
    "-check-single-keys",
    "db0=members,db0=user:1,db0=ranking,db0=events,db0=missing",
    "-count-keys",
    "db0=key:*,db3=three:*",
)


@pytest.fixture
def pair(
    tmp_path: Path, loaded_redis: RedisServer, started: list[Service]
) -> tuple[Service, Service]:
    require_binary("prometheus-redis-exporter")
    ours = adapter(
        tmp_path, "--redis-addr", loaded_redis.url, "--include-system-metrics", *KEY_ARGS
    )
    theirs = redis_exporter(
        tmp_path, "-redis.addr", loaded_redis.url, "-include-system-metrics", *KEY_ARGS
    )
    started.extend([ours.start(), theirs.start()])
    # A first scrape each, so both have seen the same commands in commandstats.
    ours.get(), theirs.get()
    return ours, theirs


def scrape_both(
    pair: tuple[Service, Service],
) -> tuple[dict[str, metrics.Family], dict[str, metrics.Family]]:
    ours, theirs = pair
    status_a, text_a = ours.get()
    status_b, text_b = theirs.get()
    assert status_a == status_b == 200
    return metrics.parse(text_a), metrics.parse(text_b)


def test_family_coverage_and_identity(pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(pair)
    compared = {name for name in theirs if not GO_RUNTIME.match(name)}
    missing = compared - set(ours)
    assert missing == NOT_EXPORTED
    assert len(compared & set(ours)) / len(compared) >= 0.95
    assert set(ours) - set(theirs) == ADDED
    for name in compared & set(ours):
        assert ours[name].type == theirs[name].type, name
        assert ours[name].label_names() == theirs[name].label_names(), name


def test_dashboard_and_alert_metrics_present(pair: tuple[Service, Service]) -> None:
    ours, _ = scrape_both(pair)
    for name in DASHBOARD_763 + MIXIN:
        assert name in ours and ours[name].samples, name
    assert metrics.value(ours, "redis_up") == 1


def test_keyspace_and_key_values_match_exactly(pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(pair)
    for name in (
        "redis_db_keys",
        "redis_db_keys_expiring",
        "redis_key_size",
        "redis_key_value",
        "redis_keys_count",
        "redis_config_maxmemory",
        "redis_config_maxclients",
        "redis_slowlog_length",
        "redis_slowlog_last_id",
    ):
        want = sorted((n, sorted(lbl.items()), v) for n, lbl, v in theirs[name].samples)
        got = sorted((n, sorted(lbl.items()), v) for n, lbl, v in ours[name].samples)
        assert got == want, name
    assert metrics.value(ours, "redis_db_keys", db="db3") == 300
    assert metrics.value(ours, "redis_db_keys_expiring", db="db1") == 50


def test_instance_labels_and_commandstats_agree(pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(pair)
    ((_, ours_info, _),) = ours["redis_instance_info"].samples
    ((_, theirs_info, _),) = theirs["redis_instance_info"].samples
    assert ours_info == theirs_info
    our_cmds = {lbl["cmd"] for _, lbl, _ in ours["redis_commands_total"].samples}
    their_cmds = {lbl["cmd"] for _, lbl, _ in theirs["redis_commands_total"].samples}
    assert {"debug", "set", "rpush", "info", "slowlog|get"} <= our_cmds
    assert our_cmds == their_cmds
    errors = {lbl["err"]: v for _, lbl, v in ours["redis_errors_total"].samples}
    assert errors.get("ERR", 0) >= 1


def test_every_mapped_field_that_redis_reports_is_exported(
    pair: tuple[Service, Service], loaded_redis: RedisServer
) -> None:
    """Closes the weakness of mappings as data: a mistyped INFO field would yield nothing."""
    ours, _ = scrape_both(pair)
    info_fields = set(loaded_redis.client().info("all"))
    reported = [f for f in FIELDS if f in info_fields]
    assert set(FIELDS) - info_fields == NOT_IN_REDIS_7_INFO
    for field_name in reported:
        assert f"redis_{FIELDS[field_name].family.name}" in ours, field_name


def test_promtool_finds_nothing_redis_exporter_does_not(pair: tuple[Service, Service]) -> None:
    """Names kept for compatibility inherit redis_exporter's lint findings, and only those."""
    findings = []
    for service in pair:
        _, text = service.get()
        lines = set(metrics.promtool_findings(text).splitlines())
        assert not any("error while linting" in line or "parse" in line.lower() for line in lines)
        findings.append(lines)
    ours, theirs = findings
    assert ours <= theirs, ours - theirs


# --- The sources behind flags: streams, key groups, a script, client list, config metrics.
# Both exporters get the same flags.
SCRIPT = """
redis.call("SELECT", 0)
return {"answer", "42", "counter", redis.call("GET", "counter")}
"""
KEY_GROUPS = "^(key):1,^(key):(2),^(user),^(one):,^(three)"


def source_args(script: Path) -> tuple[str, ...]:
    return (
        *KEY_ARGS,
        "-check-streams",
        "db1=orders:*",
        "-check-single-streams",
        "db0=events,db0=no-such-stream",
        "-check-key-groups",
        KEY_GROUPS,
        "-max-distinct-key-groups",
        "2",  # db0 has four groups: the overflow rule is compared too
        "-script",
        str(script),
        "-export-client-list",
        "-include-config-metrics",
        "-ping-on-connect",
    )


@pytest.fixture
def sources_pair(
    tmp_path: Path, loaded_redis: RedisServer, started: list[Service]
) -> Iterator[tuple[Service, Service]]:
    require_binary("prometheus-redis-exporter")
    c = loaded_redis.client()
    c.xgroup_create("events", "readers", id="0")
    c.xgroup_create("events", "late", id="$")
    c.xreadgroup("readers", "reader-1", {"events": ">"}, count=1)
    db1 = loaded_redis.client(db=1)
    db1.xadd("orders:1", {"item": "a"}, id="1700000000000-0")
    db1.xadd("orders:1", {"item": "b"}, id="1700000000500-1")
    db1.xadd("orders:2", {"item": "c"}, id="5-0")
    db1.xgroup_create("orders:1", "billing", id="1700000000000-0")
    watcher = loaded_redis.client()  # an idle, named connection both must list alike
    watcher.client_setname("watcher")
    watcher.ping()
    script = tmp_path / "collect.lua"
    script.write_text(SCRIPT)
    args = source_args(script)
    ours = adapter(tmp_path, "--redis-addr", loaded_redis.url, *args)
    theirs = redis_exporter(tmp_path, "-redis.addr", loaded_redis.url, *args)
    started.extend([ours.start(), theirs.start()])
    yield ours, theirs
    watcher.close()


def test_sources_families_are_identical(sources_pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(sources_pair)
    compared = {name for name in theirs if not GO_RUNTIME.match(name)}
    assert compared - set(ours) == NOT_EXPORTED
    assert set(ours) - set(theirs) == ADDED
    for name in compared & set(ours):
        assert ours[name].type == theirs[name].type, name
        assert ours[name].label_names() == theirs[name].label_names(), name
    for name in (
        "redis_stream_group_consumer_idle_seconds",
        "redis_key_group_count",
        "redis_script_values",
        "redis_connected_clients_details",
        "redis_config_key_value",
        "redis_exporter_last_scrape_ping_time_seconds",
    ):
        assert ours[name].samples, name
    assert metrics.value(ours, "redis_up") == metrics.value(theirs, "redis_up") == 1


def samples(family: metrics.Family, skip: tuple[str, ...] = ()) -> list[object]:
    return sorted(
        (n, sorted((k, v) for k, v in lbl.items() if k not in skip), value)
        for n, lbl, value in family.samples
    )


def test_sources_values_match_exactly(sources_pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(sources_pair)
    for name in (
        "redis_stream_length",
        "redis_stream_groups",
        "redis_stream_last_generated_id",
        "redis_stream_radix_tree_keys",
        "redis_stream_radix_tree_nodes",
        "redis_stream_group_consumers",
        "redis_stream_group_messages_pending",
        "redis_stream_group_last_delivered_id",
        "redis_stream_group_consumer_messages_pending",
        "redis_key_group_count",
        "redis_key_group_memory_usage_bytes",
        "redis_number_of_distinct_key_groups",
        "redis_script_values",
        "redis_config_key_value",
        "redis_config_value",
        "redis_config_maxmemory",
        "redis_config_io_threads",
    ):
        assert samples(ours[name]) == samples(theirs[name]), name
    assert metrics.value(ours, "redis_stream_length", db="db1", stream="orders:1") == 2
    assert metrics.value(ours, "redis_stream_group_last_delivered_id", group="billing") == (
        1700000000000
    )
    assert metrics.value(ours, "redis_number_of_distinct_key_groups", db="db0") == 4
    assert metrics.value(ours, "redis_key_group_count", db="db3", key_group="three") == 300
    assert metrics.value(ours, "redis_script_values", key="counter") == 42


def test_client_list_agrees(sources_pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(sources_pair)
    # created_at and idle_since are "now" less age and idle: a second apart at most.
    skip = ("created_at", "idle_since")
    want = [
        s for s in samples(theirs["redis_connected_clients_details"], skip) if "watcher" in str(s)
    ]
    got = [s for s in samples(ours["redis_connected_clients_details"], skip) if "watcher" in str(s)]
    assert len(want) == 1 and got == want


def test_sources_promtool_finds_nothing_redis_exporter_does_not(
    sources_pair: tuple[Service, Service],
) -> None:
    test_promtool_finds_nothing_redis_exporter_does_not(sources_pair)


# --- Every flag on at once: a cluster node (-is-cluster), a Sentinel and a loaded standalone
# master, each scraped by both exporters with the same full flag set.
CLUSTER_SCRIPT = 'return {"answer", "42"}\n'
COVERAGE_FLOOR = 0.98


def full_flag_scrapes(
    tmp_path: Path,
    loaded_redis: RedisServer,
    redis_cluster: Cluster,
    sentinels: SentinelSet,
    started: list[Service],
) -> list[tuple[str, dict[str, metrics.Family], dict[str, metrics.Family]]]:
    """(what, ours, theirs) for each target; the sentinel through /scrape of the standalone
    pair, as one exporter serves many targets."""
    script = tmp_path / "collect.lua"
    script.write_text(SCRIPT)
    cluster_script = tmp_path / "cluster.lua"
    cluster_script.write_text(CLUSTER_SCRIPT)
    standalone = source_args(script)
    on_cluster = (
        "-is-cluster",
        "-check-keys",
        "ck:user:*",
        "-check-single-keys",
        "ck:counter",
        "-count-keys",
        "ck:user:*",
        "-check-streams",
        "cs:*",
        "-check-key-groups",
        "^(ck)",
        "-script",
        str(cluster_script),
        "-export-client-list",
        "-include-config-metrics",
        "-ping-on-connect",
        "-include-system-metrics",
    )
    rc = redis_cluster.client()
    rc.set("ck:counter", "17")
    for i in range(40):  # every master holds some: 1.45's SCAN lands on any one of them
        rc.set(f"ck:user:{i}", f"name-{i}")
    pairs = []
    for what, url, args in (
        ("standalone", loaded_redis.url, (*standalone, "-include-system-metrics")),
        ("cluster", redis_cluster.seed.url, on_cluster),
    ):
        ours = adapter(
            tmp_path, "--redis-addr", url, "--scrape-allow", sentinels.url, *args, name=what
        )
        theirs = redis_exporter(tmp_path, "-redis.addr", url, *args)
        theirs.log_path = tmp_path / f"redis_exporter-{what}.log"
        started.extend([ours.start(), theirs.start()])
        pairs.append((what, ours, theirs))
    results = []
    for what, ours, theirs in pairs:
        paths = ["/metrics"]
        if what == "standalone":
            paths.append(f"/scrape?target={sentinels.url}")
        for path in paths:
            ours.get(path), theirs.get(path)  # both have now seen each other's commands
            (status_a, text_a), (status_b, text_b) = ours.get(path), theirs.get(path)
            assert status_a == status_b == 200, (what, path)
            name = "sentinel" if "scrape" in path else what
            results.append((name, metrics.parse(text_a), metrics.parse(text_b)))
    return results


def test_full_flag_set_coverage_types_labels_and_values(
    tmp_path: Path,
    loaded_redis: RedisServer,
    redis_cluster: Cluster,
    sentinels: SentinelSet,
    started: list[Service],
) -> None:
    require_binary("prometheus-redis-exporter")
    scrapes = full_flag_scrapes(tmp_path, loaded_redis, redis_cluster, sentinels, started)
    theirs_all: set[str] = set()
    ours_all: set[str] = set()
    for what, ours, theirs in scrapes:
        compared = {name for name in theirs if not GO_RUNTIME.match(name)}
        theirs_all |= compared
        ours_all |= set(ours)
        for name in compared & set(ours):
            assert ours[name].type == theirs[name].type, (what, name)
            assert ours[name].label_names() == theirs[name].label_names(), (what, name)
        # /scrape serves the target's families only, on both sides: no process metrics
        added = ADDED if what != "sentinel" else {"redis_adapter_scrape_errors_total"}
        assert set(ours) - set(theirs) == added, what
        assert metrics.value(ours, "redis_up") == metrics.value(theirs, "redis_up"), what
    missing = theirs_all - ours_all
    coverage = len(theirs_all & ours_all) / len(theirs_all)
    print(
        f"\nfamily coverage with every flag on: {len(theirs_all & ours_all)}/{len(theirs_all)}"
        f" = {coverage:.1%}; missing: {sorted(missing)}"
    )
    assert coverage >= COVERAGE_FLOOR
    assert missing == NOT_EXPORTED

    by_target = {what: (ours, theirs) for what, ours, theirs in scrapes}
    deterministic = {
        "standalone": (
            "redis_db_keys",
            "redis_key_size",
            "redis_key_value",
            "redis_keys_count",
            "redis_stream_length",
            "redis_key_group_count",
            "redis_script_values",
            "redis_config_key_value",
            "redis_instance_info",
        ),
        "cluster": (
            "redis_cluster_state",
            "redis_cluster_slots_ok",
            "redis_cluster_known_nodes",
            "redis_cluster_size",
            "redis_key_value",
            "redis_keys_count",
            "redis_key_group_count",
            "redis_script_values",
            "redis_config_value",
        ),
        "sentinel": (
            "redis_sentinel_masters",
            "redis_sentinel_master_status",
            "redis_sentinel_master_ok_sentinels",
            "redis_sentinel_master_ok_slaves",
            "redis_sentinel_master_ckquorum_status",
            "redis_db_keys",
        ),
    }
    for what, names in deterministic.items():
        ours, theirs = by_target[what]
        for name in names:
            if what == "cluster" and name == "redis_key_value":
                # 1.45 SCANs one random master; compare the key every master agrees on
                assert metrics.value(ours, name, key="ck:counter") == 17
                assert metrics.value(theirs, name, key="ck:counter") == 17
                continue
            assert samples(ours[name]) == samples(theirs[name]), (what, name)
    # a Sentinel answers no EVAL: the script fails the scrape in both, every metric served
    sentinel_ours, sentinel_theirs = by_target["sentinel"]
    assert metrics.value(sentinel_ours, "redis_up") == 0
    assert metrics.value(sentinel_theirs, "redis_up") == 0
