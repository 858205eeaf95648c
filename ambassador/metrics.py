"""The ambassador's /metrics: the engine's counters and, per upstream peer, responses by
code, failures by kind, response time, up/down, effective weight, connections, its state
beyond nginx open source (drain, slow start, ejection), and in tcp mode the connections and
bytes each way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from podkit.buildinfo import build_info
from podkit.proxy.stats import Histogram, ProxyStats

LABELS = ["upstream", "address", "group"]
FAILURE_KINDS = (
    "connect",
    "timeout",
    "reset",
    "invalid_response",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_429",
)


class AmbassadorCollector(Collector):
    def __init__(
        self,
        stats: Callable[[], ProxyStats],
        views: Callable[[], list[dict[str, Any]]],
        refused_writes: Callable[[], int] = lambda: 0,
    ) -> None:
        self.stats = stats  # this process's counters, or the sum of the workers'
        self.views = views  # the peers, as /upstreams shows them
        self.refused_writes = refused_writes

    def collect(self) -> Iterator[Metric]:
        yield build_info("ambassador")
        yield from self.stats().families("ambassador")
        responses = CounterMetricFamily(
            "ambassador_upstream_responses",
            "Responses from each upstream peer, by status code",
            labels=[*LABELS, "code"],
        )
        failures = CounterMetricFamily(
            "ambassador_upstream_failures",
            "Failed attempts on each upstream peer, by kind",
            labels=[*LABELS, "kind"],
        )
        latency = HistogramMetricFamily(
            "ambassador_upstream_response_seconds",
            "Time from the request head to the end of the response",
            labels=LABELS,
        )
        up = GaugeMetricFamily(
            "ambassador_upstream_up",
            "1 while the peer may be chosen (not down, failing or full)",
            labels=LABELS,
        )
        healthy = GaugeMetricFamily(
            "ambassador_upstream_healthy",
            "The active health check's verdict (1 without checks)",
            labels=LABELS,
        )
        weight = GaugeMetricFamily(
            "ambassador_upstream_effective_weight",
            "nginx's effective weight: lowered by failures, regained",
            labels=LABELS,
        )
        conns = GaugeMetricFamily(
            "ambassador_upstream_active_requests", "Requests in flight on each peer", labels=LABELS
        )
        draining = GaugeMetricFamily(
            "ambassador_upstream_draining",
            "1 while the peer drains: no new requests, those in flight finish",
            labels=LABELS,
        )
        share = GaugeMetricFamily(
            "ambassador_upstream_slow_start_share",
            "The part of its weight the peer has now: below 1 while slow starting",
            labels=LABELS,
        )
        ejected = GaugeMetricFamily(
            "ambassador_upstream_ejected",
            "1 while the peer is ejected by outlier detection",
            labels=LABELS,
        )
        ejections = CounterMetricFamily(
            "ambassador_upstream_ejections",
            "Times the peer was ejected by outlier detection",
            labels=LABELS,
        )
        connections = CounterMetricFamily(
            "ambassador_upstream_connections",
            "tcp mode: connections made to each peer",
            labels=LABELS,
        )
        sent = CounterMetricFamily(
            "ambassador_upstream_sent_bytes",
            "tcp mode: bytes from clients to each peer",
            labels=LABELS,
        )
        received = CounterMetricFamily(
            "ambassador_upstream_received_bytes",
            "tcp mode: bytes from each peer to clients",
            labels=LABELS,
        )
        for view in self.views():
            labels = [view["server"], view["address"], view.get("group", "default")]
            for code, n in sorted(view["responses"].items()):
                responses.add_metric([*labels, code], n)
            for kind in FAILURE_KINDS:
                failures.add_metric([*labels, kind], view["failures"].get(kind, 0))
            histogram = Histogram()
            histogram.counts, histogram.total = view["latency"]["counts"], view["latency"]["total"]
            latency.add_metric(labels, histogram.cumulative(), histogram.total)
            up.add_metric(labels, 1.0 if view["available"] else 0.0)
            healthy.add_metric(labels, 1.0 if view["healthy"] else 0.0)
            weight.add_metric(labels, view["effective_weight"])
            conns.add_metric(labels, view["active_requests"])
            draining.add_metric(labels, 1.0 if view["drain"] else 0.0)
            share.add_metric(labels, view["weight_share"])
            ejected.add_metric(labels, 1.0 if view["ejected"] else 0.0)
            ejections.add_metric(labels, view["ejections"])
            connections.add_metric(labels, view.get("connections", 0))
            sent.add_metric(labels, view.get("sent_bytes", 0))
            received.add_metric(labels, view.get("received_bytes", 0))
        yield from (responses, failures, latency, up, healthy, weight, conns)
        yield from (draining, share, ejected, ejections, connections, sent, received)
        yield CounterMetricFamily(
            "ambassador_admin_writes_refused",
            "Admin-port writes refused: not from loopback and without the admin token",
            value=self.refused_writes(),
        )


def registry_for(
    stats: Callable[[], ProxyStats],
    views: Callable[[], list[dict[str, Any]]],
    refused_writes: Callable[[], int] = lambda: 0,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AmbassadorCollector(stats, views, refused_writes))
    ProcessCollector(registry=registry)
    return registry
