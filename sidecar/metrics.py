"""The sidecar's /metrics: the engine's counters, certificates, and the process."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from podkit.buildinfo import build_info
from podkit.proxy.stats import ProxyStats
from sidecar.tls import HANDSHAKE_LABELS, CertStore


class SidecarCollector(Collector):
    def __init__(
        self,
        stats: Callable[[], ProxyStats],
        certs: CertStore | None,
        refused: Callable[[], int],
    ) -> None:
        self.stats = stats  # this process's counters, or the sum of the workers'
        self.certs = certs
        self.refused = refused  # client certificates the --allow-* lists refused, likewise

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        yield build_info("sidecar")
        yield from stats.families("sidecar")
        failures = CounterMetricFamily(
            "sidecar_tls_handshake_failures",
            "TLS handshakes that failed, by reason",
            labels=["reason"],
        )
        for reason in HANDSHAKE_LABELS:
            failures.add_metric([reason], stats.handshake_failures.get(reason, 0))
        yield failures
        yield CounterMetricFamily(
            "sidecar_client_cert_refused",
            "Connections whose verified client certificate no --allow-* rule admitted",
            value=self.refused(),
        )
        if self.certs is None:
            return
        not_after = GaugeMetricFamily(
            "sidecar_cert_not_after_timestamp_seconds",
            "Expiry of each served certificate, as a Unix time",
            labels=["cert_file"],
        )
        for pair in self.certs.pairs:
            not_after.add_metric([pair.cert_file], pair.not_after)
        yield not_after
        yield CounterMetricFamily(
            "sidecar_cert_reloads", "Certificate pairs reloaded", value=self.certs.reloads
        )
        yield CounterMetricFamily(
            "sidecar_cert_reload_failures",
            "Changed certificate pairs that were rejected",
            value=self.certs.reload_failures,
        )


def registry_for(
    stats: Callable[[], ProxyStats],
    certs: CertStore | None,
    refused: Callable[[], int],
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SidecarCollector(stats, certs, refused))
    ProcessCollector(registry=registry)
    return registry
