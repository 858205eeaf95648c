"""A Sentinel as the target, side by side with redis_exporter 1.45: a real redis-sentinel
(two of them, quorum 2) watching a real master and its replica."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import metrics
from support.processes import Service, adapter, redis_exporter
from support.redis_topology import MASTER_NAME, SentinelSet
from support.tools import require_binary

SENTINEL_FAMILIES = {
    "redis_sentinel_masters",
    "redis_sentinel_tilt",
    "redis_sentinel_running_scripts",
    "redis_sentinel_scripts_queue_length",
    "redis_sentinel_simulate_failure_flags",
    "redis_sentinel_master_status",
    "redis_sentinel_master_slaves",
    "redis_sentinel_master_sentinels",
    "redis_sentinel_master_ckquorum_status",
    "redis_sentinel_master_ok_sentinels",
    "redis_sentinel_master_ok_slaves",
}


@pytest.fixture
def sentinel_pair(
    tmp_path: Path, sentinels: SentinelSet, started: list[Service]
) -> tuple[Service, Service]:
    require_binary("prometheus-redis-exporter")
    ours = adapter(tmp_path, "--redis-addr", sentinels.url)
    theirs = redis_exporter(tmp_path, "-redis.addr", sentinels.url)
    started.extend([ours.start(), theirs.start()])
    return ours, theirs


def samples(family: metrics.Family) -> list[object]:
    return sorted((n, sorted(lbl.items()), v) for n, lbl, v in family.samples)


def test_sentinel_families_and_values_are_redis_exporters(
    sentinel_pair: tuple[Service, Service], sentinels: SentinelSet
) -> None:
    (_, text_a), (_, text_b) = sentinel_pair[0].get(), sentinel_pair[1].get()
    ours, theirs = metrics.parse(text_a), metrics.parse(text_b)
    assert {n for n in theirs if n.startswith("redis_sentinel_")} == SENTINEL_FAMILIES
    for name in SENTINEL_FAMILIES:
        assert ours[name].type == theirs[name].type == "gauge", name
        assert ours[name].help == theirs[name].help, name
        assert samples(ours[name]) == samples(theirs[name]), name
    compared = {n for n in theirs if not n.startswith(("go_", "promhttp_"))}
    assert compared - set(ours) == {"redis_exporter_build_info"}
    address = f"127.0.0.1:{sentinels.master.port}"
    master = {"master_name": MASTER_NAME, "master_address": address}
    assert metrics.value(ours, "redis_sentinel_master_ok_sentinels", **master) == 2
    assert metrics.value(ours, "redis_sentinel_master_ok_slaves", **master) == 1
    assert metrics.value(ours, "redis_sentinel_master_status", master_status="ok", **master) == 1
    ((_, quorum, ok),) = ours["redis_sentinel_master_ckquorum_status"].samples
    assert ok == 1 and quorum["message"].startswith("OK 2 usable Sentinels")
    assert metrics.value(ours, "redis_up") == 1


def test_a_sentinel_is_asked_only_what_it_answers(
    tmp_path: Path, sentinels: SentinelSet, started: list[Service]
) -> None:
    """Once known to be a Sentinel, the target gets no CONFIG, SLOWLOG or LATENCY: the
    error count of the Sentinel stays still over further scrapes."""
    ours = adapter(tmp_path, "--redis-addr", sentinels.url, name="adapter-quiet")
    started.append(ours.start())
    ours.get()
    client = sentinels.sentinel_client()
    before = client.info("stats")["total_error_replies"]
    for _ in range(3):
        status, text = ours.get()
        assert status == 200 and "redis_sentinel_masters 1" in text
    assert client.info("stats")["total_error_replies"] == before
