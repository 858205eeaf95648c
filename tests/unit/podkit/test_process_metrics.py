"""podkit.process_metrics: the process_* text written by hand, held against prometheus-client's
ProcessCollector rendered through generate_latest (what every service served before)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector
from support.metrics import without_moving_values

from podkit import process_metrics


def test_as_prometheus_clients_process_collector_renders_them() -> None:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    theirs = generate_latest(registry).decode()
    ours = process_metrics.process_metrics().decode()
    assert without_moving_values(ours) == without_moving_values(theirs)
    assert ours.endswith("\n") and "\n\n" not in ours
    assert "# TYPE process_cpu_seconds_total counter\n" in ours


def test_each_family_is_one_text_without_its_last_newline() -> None:
    families = process_metrics.process_families()
    assert [f.split()[2] for f in families] == [
        "process_virtual_memory_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
    ]
    assert all(f.count("\n") == 2 and not f.endswith("\n") for f in families)


def test_without_proc_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_metrics, "boot_time", lambda: 0.0)
    assert process_metrics.process_families() == []
    assert process_metrics.process_metrics() == b""
