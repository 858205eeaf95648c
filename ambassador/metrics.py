"""The ambassador's /metrics: the engine's counters and, per upstream peer, responses by
code, failures by kind, response time, up/down, effective weight and connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ambassador.balancer import Balancer
from podkit.proxy.stats import ProxyStats

LABELS = ["upstream", "address"]
FAILURE_KINDS = ("connect", "timeout", "reset", "invalid_response")


class AmbassadorCollector(Collector):
    def __init__(self, stats: Callable[[], ProxyStats], balancer: Callable[[], Balancer]) -> None:
        self.stats = stats
        self.balancer = balancer

    def collect(self) -> Iterator[Metric]:
        yield from self.stats().families("ambassador")
        balancer = self.balancer()
        now = balancer.clock()
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
        for peer in balancer.peers:
            labels = [peer.name, peer.upstream.url]
            for code, n in sorted(peer.responses.items()):
                responses.add_metric([*labels, str(code)], n)
            for kind in FAILURE_KINDS:
                failures.add_metric([*labels, kind], peer.failures.get(kind, 0))
            latency.add_metric(labels, peer.latency.cumulative(), peer.latency.total)
            up.add_metric(labels, 1.0 if peer.available(now) else 0.0)
            healthy.add_metric(labels, 1.0 if peer.healthy else 0.0)
            weight.add_metric(labels, peer.effective_weight)
            conns.add_metric(labels, peer.conns)
        yield from (responses, failures, latency, up, healthy, weight, conns)


def registry_for(
    stats: Callable[[], ProxyStats], balancer: Callable[[], Balancer]
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AmbassadorCollector(stats, balancer))
    ProcessCollector(registry=registry)
    return registry
