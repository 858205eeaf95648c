"""INFO parsing and mapping, table-driven against INFO recorded from real servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import metrics

from adapter import info
from podkit.exposition import Exposition

DATA = Path(__file__).parent / "data"


def collect(
    name: str, db_count: int = 16, include_system: bool = False
) -> dict[str, metrics.Family]:
    sections = info.parse_info((DATA / name).read_text())
    out = Exposition("redis")
    info.add_info_fields(out, sections, include_system=include_system)
    info.add_server(out, sections, now=2_000_000_000)
    info.add_replication(out, sections)
    info.add_keyspace(out, sections, db_count)
    info.add_commandstats(out, sections)
    info.add_errorstats(out, sections)
    return metrics.parse(out.render().decode())


def test_parse_info_sections_and_crlf() -> None:
    sections = info.parse_info(
        "# Server\r\nredis_version:7.0.15\r\nos:Linux 6.1 x86_64\r\n\r\n"
        "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
    )
    assert sections["server"] == {"redis_version": "7.0.15", "os": "Linux 6.1 x86_64"}
    assert sections["keyspace"] == {"db0": "keys=1,expires=0,avg_ttl=0"}


@pytest.mark.parametrize(
    ("name", "labels", "want"),
    [
        pytest.param("redis_memory_used_bytes", {}, None, id="gauge-present"),
        pytest.param("redis_db_keys", {"db": "db1"}, 5000, id="keyspace"),
        pytest.param("redis_db_keys", {"db": "db15"}, 0, id="empty-db-zero-filled"),
        pytest.param("redis_db_avg_ttl_seconds", {"db": "db0"}, 0, id="ttl-ms-to-s"),
        pytest.param("redis_commands_total", {"cmd": "get"}, 3, id="commandstats"),
        pytest.param("redis_commands_rejected_calls_total", {"cmd": "get"}, 1, id="rejected"),
        pytest.param("redis_errors_total", {"err": "WRONGTYPE"}, 2, id="errorstats"),
        pytest.param("redis_rdb_last_bgsave_status", {}, 1, id="status-ok-is-1"),
        pytest.param("redis_start_time_seconds", {}, None, id="start-time"),
        pytest.param(
            "redis_connected_slave_lag_seconds", {"slave_port": "6391"}, 0, id="replica-line"
        ),
    ],
)
def test_master_fields(name: str, labels: dict[str, str], want: float | None) -> None:
    families = collect("info_master_7.0.txt")
    got = metrics.value(families, name, **labels)
    if want is not None:
        assert got == want


def test_latency_percentiles_are_a_summary_with_commandstats_count_and_sum() -> None:
    families = collect("info_master_7.0.txt")
    fam = families["redis_latency_percentiles_usec"]
    assert fam.type == "summary"
    quantiles = {
        lbl["quantile"]
        for n, lbl, _ in fam.samples
        if lbl.get("cmd") == "get" and "quantile" in lbl
    }
    assert quantiles == {"50", "99", "99.9"}
    assert metrics.value(families, "redis_latency_percentiles_usec_count", cmd="get") == 3
    assert metrics.value(families, "redis_latency_percentiles_usec_sum", cmd="get") == 3


def test_counters_keep_redis_exporter_names_and_types() -> None:
    families = collect("info_master_7.0.txt")
    assert families["redis_total_error_replies"].type == "counter"  # no _total, as upstream
    assert families["redis_commands_processed_total"].type == "counter"
    assert families["redis_expired_time_cap_reached_total"].type == "gauge"


def test_system_memory_only_when_asked() -> None:
    assert "redis_total_system_memory_bytes" not in collect("info_master_7.0.txt")
    assert "redis_total_system_memory_bytes" in collect("info_master_7.0.txt", include_system=True)


def test_instance_info_labels() -> None:
    families = collect("info_master_7.0.txt")
    ((_, lbl, value),) = families["redis_instance_info"].samples
    assert value == 1
    assert set(lbl) == set(info.INSTANCE_INFO_LABELS)
    assert lbl["role"] == "master" and lbl["redis_version"] == "7.0.15"
    assert lbl["maxmemory_policy"] == "noeviction"


def test_replica() -> None:
    families = collect("info_replica_7.0.txt")
    link = {"master_host": "127.0.0.1", "master_port": "6390"}
    assert metrics.value(families, "redis_master_link_up", **link) in (0, 1)
    assert metrics.value(families, "redis_slave_info", read_only="1", **link) == 1
    assert "redis_master_sync_in_progress" in families
    assert "redis_slave_repl_offset" in families
    assert "redis_connected_slave_offset_bytes" not in families


def test_legacy_redis_5_format() -> None:
    families = collect("info_legacy_5.0.txt")
    assert metrics.value(families, "redis_commands_total", cmd="set") == 61
    assert metrics.value(
        families, "redis_commands_duration_seconds_total", cmd="set"
    ) == pytest.approx(0.003139)
    assert "redis_commands_rejected_calls_total" not in families  # pre-6.2: no such counts
    assert metrics.value(families, "redis_client_biggest_input_buf") == 12
    assert metrics.value(families, "redis_aof_last_write_status") == 0  # "err"
    assert metrics.value(families, "redis_latest_fork_seconds") == pytest.approx(0.0015)
    assert metrics.value(families, "redis_db_avg_ttl_seconds", db="db0") == 1.5
    # a replica line without lag (Redis < 3): offset only
    assert (
        metrics.value(families, "redis_connected_slave_offset_bytes", slave_ip="10.0.0.2") == 1234
    )
    assert "redis_connected_slave_lag_seconds" not in families
    assert metrics.value(families, "redis_start_time_seconds") == 2_000_000_000 - 100


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("db0:keys=abc,expires=0", id="keys-not-a-number"),
        pytest.param("db0:garbage", id="no-fields"),
        pytest.param("cmdstat_get:calls=x,usec=1,usec_per_call=1", id="calls-not-a-number"),
        pytest.param("cmdstat_get:nonsense", id="too-few-parts"),
        pytest.param("latency_percentiles_usec_get:p50", id="percentile-without-value"),
        pytest.param("errorstat_ERR:count", id="errorstat-without-value"),
        pytest.param("used_memory:lots", id="gauge-not-a-number"),
        pytest.param("slave0:ip=1.2.3.4,port=1", id="replica-without-offset"),
    ],
)
def test_malformed_lines_are_skipped_not_fatal(line: str) -> None:
    text = (
        f"# Memory\r\n{line}\r\n# Keyspace\r\n{line}\r\n# Commandstats\r\n{line}\r\n"
        f"# Latencystats\r\n{line}\r\n# Errorstats\r\n{line}\r\n# Replication\r\n{line}\r\n"
    )
    sections = info.parse_info(text)
    out = Exposition("redis")
    info.add_info_fields(out, sections, include_system=False)
    info.add_keyspace(out, sections, 1)
    info.add_commandstats(out, sections)
    info.add_errorstats(out, sections)
    info.add_replication(out, sections)
    families = metrics.parse(out.render().decode())
    assert metrics.value(families, "redis_db_keys", db="db0") == 0  # zero-filled, not garbage
    assert "redis_memory_used_bytes" not in families


def test_number() -> None:
    assert info.number("12") == 12.0
    assert info.number("1.5") == 1.5
    assert info.number("ok") == 1.0
    assert info.number("fail") == 0.0
    assert info.number("yes please") is None
