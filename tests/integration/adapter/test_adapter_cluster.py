"""--is-cluster against a real 6-node Redis Cluster, side by side with redis_exporter 1.45.

Both exporters get the same flags and the same seed node. redis_exporter is the oracle for
names, types, labels and the values of the deterministic gauges; where 1.45's cluster client
is random (the master a --check-keys SCAN lands on), the adapter reports every master's keys
and the test checks 1.45's answer is one master's share of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from support import metrics
from support.processes import Service, adapter, redis_exporter
from support.redis_topology import Cluster
from support.tools import require_binary

GO_RUNTIME = ("go_", "promhttp_")
NOT_EXPORTED = {"redis_exporter_build_info"}
ADDED = {
    "redis_adapter_build_info",
    "redis_adapter_scrape_errors_total",
    "python_info",
    "python_gc_objects_collected_total",
    "python_gc_objects_uncollectable_total",
    "python_gc_collections_total",
}
SINGLE_KEYS = ("ck:list", "ck:hash", "ck:counter", "ck:missing")
SCRIPT = 'return {"answer", "42"}\n'


def seed_key(cluster: Cluster, prefix: str) -> str:
    """A key of `prefix` that the seed node owns (1.45 reads streams there only)."""
    rc = cluster.client()
    for i in range(10_000):
        key = f"{prefix}{i}"
        if rc.get_node_from_key(key).port == cluster.seed.port:
            return key
    raise AssertionError("no key of the seed's slots found")


def cluster_args(script: Path, stream: str) -> tuple[str, ...]:
    return (
        "-is-cluster",
        "-check-keys",
        "ck:user:*",
        "-check-single-keys",
        ",".join(SINGLE_KEYS),
        "-count-keys",
        "ck:user:*",
        "-check-streams",
        "cs:*",
        "-check-single-streams",
        stream,
        "-check-key-groups",
        "^(ck):(user),^(cs)",
        "-script",
        str(script),
        "-export-client-list",
        "-include-config-metrics",
        "-ping-on-connect",
    )


@pytest.fixture
def cluster_pair(
    tmp_path: Path, redis_cluster: Cluster, started: list[Service]
) -> Iterator[tuple[Service, Service]]:
    require_binary("prometheus-redis-exporter")
    assert redis_cluster.seed in redis_cluster.masters()
    rc = redis_cluster.client()
    for i in range(40):
        rc.set(f"ck:user:{i}", f"name-{i}")
    rc.delete("ck:list")
    rc.rpush("ck:list", *range(5))
    rc.hset("ck:hash", mapping={"a": "1", "b": "2"})
    rc.set("ck:counter", "17")
    stream = seed_key(redis_cluster, "cs:")
    if not rc.exists(stream):
        rc.xadd(stream, {"k": "v"}, id="1700000000000-0")
        rc.xgroup_create(stream, "readers", id="0")
    watcher = redis_cluster.seed.client()
    watcher.client_setname("watcher")
    watcher.ping()
    script = tmp_path / "cluster.lua"
    script.write_text(SCRIPT)
    args = cluster_args(script, stream)
    ours = adapter(tmp_path, "--redis-addr", redis_cluster.seed.url, *args)
    theirs = redis_exporter(tmp_path, "-redis.addr", redis_cluster.seed.url, *args)
    started.extend([ours.start(), theirs.start()])
    ours.get(), theirs.get()
    yield ours, theirs
    watcher.close()


def scrape_both(
    pair: tuple[Service, Service],
) -> tuple[dict[str, metrics.Family], dict[str, metrics.Family]]:
    (status_a, text_a), (status_b, text_b) = pair[0].get(), pair[1].get()
    assert status_a == status_b == 200
    return metrics.parse(text_a), metrics.parse(text_b)


def samples(family: metrics.Family, skip: tuple[str, ...] = ()) -> list[object]:
    return sorted(
        (n, sorted((k, v) for k, v in lbl.items() if k not in skip), value)
        for n, lbl, value in family.samples
    )


def test_cluster_families_are_redis_exporters(cluster_pair: tuple[Service, Service]) -> None:
    ours, theirs = scrape_both(cluster_pair)
    compared = {name for name in theirs if not name.startswith(GO_RUNTIME)}
    assert compared - set(ours) == NOT_EXPORTED
    assert set(ours) - set(theirs) == ADDED
    for name in compared & set(ours):
        assert ours[name].type == theirs[name].type, name
        assert ours[name].label_names() == theirs[name].label_names(), name
    assert metrics.value(ours, "redis_up") == metrics.value(theirs, "redis_up") == 1


def test_cluster_info_and_seed_sources_match_exactly(
    cluster_pair: tuple[Service, Service],
) -> None:
    ours, theirs = scrape_both(cluster_pair)
    for name in (
        "redis_cluster_enabled",
        "redis_cluster_state",
        "redis_cluster_slots_assigned",
        "redis_cluster_slots_ok",
        "redis_cluster_slots_pfail",
        "redis_cluster_slots_fail",
        "redis_cluster_known_nodes",
        "redis_cluster_size",
        "redis_cluster_current_epoch",
        "redis_cluster_my_epoch",
        "redis_connected_slaves",
        "redis_db_keys",
        "redis_keys_count",
        "redis_stream_length",
        "redis_stream_groups",
        "redis_stream_last_generated_id",
        "redis_stream_group_last_delivered_id",
        "redis_key_group_count",
        "redis_number_of_distinct_key_groups",
        "redis_script_values",
        "redis_config_key_value",
        "redis_config_value",
    ):
        assert samples(ours[name]) == samples(theirs[name]), name
    assert metrics.value(ours, "redis_cluster_state") == 1
    assert metrics.value(ours, "redis_cluster_known_nodes") == 6
    assert metrics.value(ours, "redis_cluster_size") == 3


def test_single_keys_are_read_on_the_master_that_owns_them(
    cluster_pair: tuple[Service, Service], redis_cluster: Cluster
) -> None:
    ours, theirs = scrape_both(cluster_pair)
    for family in ("redis_key_size", "redis_key_value"):
        want = [s for s in samples(theirs[family]) if "ck:user:" not in str(s)]
        got = [s for s in samples(ours[family]) if "ck:user:" not in str(s)]
        assert got == want, family
    owners = {redis_cluster.client().get_node_from_key(k).port for k in SINGLE_KEYS}
    assert len(owners) > 1, "the single keys should live on more than one master"
    assert metrics.value(ours, "redis_key_size", key="ck:list") == 5
    assert metrics.value(ours, "redis_key_value", key="ck:counter") == 17
    assert metrics.value(ours, "redis_key_size", key="ck:missing") == 0


def test_check_keys_patterns_cover_every_master(
    cluster_pair: tuple[Service, Service], redis_cluster: Cluster
) -> None:
    ours, theirs = scrape_both(cluster_pair)
    every = {k.decode() for k in redis_cluster.client().scan_iter(match="ck:user:*")}
    per_master = [
        {k.decode() for k in node.client().scan_iter(match="ck:user:*")}
        for node in redis_cluster.masters()
    ]
    ours_keys = {lbl["key"] for _, lbl, _ in ours["redis_key_size"].samples} & every
    theirs_keys = {lbl["key"] for _, lbl, _ in theirs["redis_key_size"].samples} & every
    assert ours_keys == every and len(every) >= 40
    assert theirs_keys in per_master  # 1.45: the share of whichever master it bound to
    values = {lbl["key"]: lbl["val"] for _, lbl, _ in ours["redis_key_value_as_string"].samples}
    assert all(values[f"ck:user:{i}"] == f"name-{i}" for i in range(40))


def test_discovery_lists_every_node_as_redis_exporter_writes_it(
    cluster_pair: tuple[Service, Service], redis_cluster: Cluster
) -> None:
    ours, _ = cluster_pair
    status, body = ours.get("/discover-cluster-nodes")
    assert status == 200
    # Go's json.MarshalIndent(..., "", "  "): two-space indent, no trailing newline.
    assert body.startswith('[\n  {\n    "targets": [\n      "redis://127.0.0.1:')
    assert body.endswith('"\n    ],\n    "labels": {}\n  }\n]')
    (group,) = json.loads(body)
    assert group == {
        "targets": group["targets"],
        "labels": {},
    }
    assert sorted(group["targets"]) == sorted(n.url for n in redis_cluster.nodes)
    listed = redis_cluster.seed.client().execute_command("CLUSTER", "NODES").decode()
    order = [line.split()[1].split("@")[0] for line in listed.splitlines() if line]
    assert group["targets"] == [f"redis://{address}" for address in order]


def test_a_master_that_cannot_be_reached_costs_its_keys_only(
    tmp_path: Path, redis_cluster: Cluster, started: list[Service]
) -> None:
    """The slot map names a master the adapter cannot authenticate to: its keys are left
    out, the error is logged once, and the scrape is still redis_up 1."""
    seed = redis_cluster.seed
    owner = {k: redis_cluster.client().get_node_from_key(k).port for k in SINGLE_KEYS}
    other = next(m for m in redis_cluster.masters() if m.port in set(owner.values()) - {seed.port})
    hidden = {k for k, port in owner.items() if port == other.port}
    ours = adapter(
        tmp_path,
        "--redis-addr",
        seed.url,
        "-is-cluster",
        "-check-single-keys",
        ",".join(SINGLE_KEYS),
    )
    other.client().config_set("requirepass", "s3cret")
    try:
        started.append(ours.start())
        for _ in range(3):
            status, text = ours.get()
            assert status == 200
        parsed = metrics.parse(text)
        assert metrics.value(parsed, "redis_up") == 1
        keys = {lbl["key"] for _, lbl, _ in parsed["redis_key_size"].samples}
        assert keys == set(SINGLE_KEYS) - hidden
    finally:
        redis.Redis(port=other.port, password="s3cret").config_set("requirepass", "")
    assert ours.log().count(f"key checks on 127.0.0.1:{other.port} failed") == 1
    assert "s3cret" not in ours.log()
