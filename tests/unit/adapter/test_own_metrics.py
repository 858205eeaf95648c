"""The adapter's process_* (podkit.process_metrics) and python_* text written by hand, held
against prometheus-client's collectors rendered through generate_latest (what the adapter
used to serve)."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from support.metrics import without_moving_values

from adapter.own_metrics import build_info_labels, process_metrics


def test_process_metrics_as_prometheus_client_renders_them() -> None:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    gc.disable()  # no collection between the two reads: the gc counters stay put
    try:
        theirs = generate_latest(registry).decode()
        ours = process_metrics().decode()
    finally:
        gc.enable()
    head, tail = ours[: len(theirs)], ours[len(theirs) :]
    assert without_moving_values(head) == without_moving_values(theirs)
    assert tail.startswith("# HELP process_virtual_memory_max_bytes ")
    assert ours.endswith("\n") and "\n\n" not in ours


def test_build_info_labels_are_looked_up_once() -> None:
    assert build_info_labels() is build_info_labels()
    assert 'compiled="false"' in build_info_labels()
