"""The ambassador's /metrics: the engine's counters and, per upstream peer, responses by
code, failures by kind, response time, up/down, effective weight, connections, its state
beyond nginx open source (drain, slow start, ejection), and in tcp mode the connections and
bytes each way.

Written with podkit.exposition, not prometheus-client, whose import alone would add ~5 MiB
to every ambassador's resident memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podkit.buildinfo import add_build_info
from podkit.exposition import (
    Exposition,
    Pairs,
    client_float,
    counter,
    gauge,
    histogram,
    labels,
)
from podkit.process_metrics import process_metrics
from podkit.proxy.stats import Histogram, ProxyStats

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

# Each peer's families, labelled address, group and upstream.
RESPONSES = counter("upstream_responses_total", "Responses from each upstream peer, by status code")
FAILURES = counter("upstream_failures_total", "Failed attempts on each upstream peer, by kind")
LATENCY = histogram(
    "upstream_response_seconds", "Time from the request head to the end of the response"
)
UP = gauge("upstream_up", "1 while the peer may be chosen (not down, failing or full)")
HEALTHY = gauge("upstream_healthy", "The active health check's verdict (1 without checks)")
WEIGHT = gauge(
    "upstream_effective_weight", "nginx's effective weight: lowered by failures, regained"
)
ACTIVE = gauge("upstream_active_requests", "Requests in flight on each peer")
DRAINING = gauge(
    "upstream_draining", "1 while the peer drains: no new requests, those in flight finish"
)
SHARE = gauge(
    "upstream_slow_start_share",
    "The part of its weight the peer has now: below 1 while slow starting",
)
EJECTED = gauge("upstream_ejected", "1 while the peer is ejected by outlier detection")
EJECTIONS = counter("upstream_ejections_total", "Times the peer was ejected by outlier detection")
CONNECTIONS = counter("upstream_connections_total", "tcp mode: connections made to each peer")
SENT = counter("upstream_sent_bytes_total", "tcp mode: bytes from clients to each peer")
RECEIVED = counter("upstream_received_bytes_total", "tcp mode: bytes from each peer to clients")
PEER_FAMILIES = (
    *(RESPONSES, FAILURES, LATENCY, UP, HEALTHY, WEIGHT, ACTIVE, DRAINING, SHARE),
    *(EJECTED, EJECTIONS, CONNECTIONS, SENT, RECEIVED),
)
WRITES_REFUSED = counter(
    "admin_writes_refused_total",
    "Admin-port writes refused: not from loopback and without the admin token",
)


def add_peers(out: Exposition, views: list[dict[str, Any]]) -> None:
    """Each peer's families, from the views /upstreams shows. Label names in order, as
    prometheus-client wrote them."""
    out.declare(*PEER_FAMILIES)  # shown with no peer too
    for view in views:
        peer: Pairs = (
            ("address", view["address"]),
            ("group", view.get("group", "default")),
            ("upstream", view["server"]),
        )
        for code, n in sorted(view["responses"].items()):
            out.put(RESPONSES, n, labels(sorted((*peer, ("code", code)))))
        for kind in FAILURE_KINDS:
            out.put(
                FAILURES, view["failures"].get(kind, 0), labels(sorted((*peer, ("kind", kind))))
            )
        latency = Histogram()
        latency.counts, latency.total = view["latency"]["counts"], view["latency"]["total"]
        out.put_histogram(LATENCY, latency.cumulative(), latency.total, peer)
        text = labels(peer)
        out.put(UP, 1.0 if view["available"] else 0.0, text)
        out.put(HEALTHY, 1.0 if view["healthy"] else 0.0, text)
        out.put(WEIGHT, view["effective_weight"], text)
        out.put(ACTIVE, view["active_requests"], text)
        out.put(DRAINING, 1.0 if view["drain"] else 0.0, text)
        out.put(SHARE, view["weight_share"], text)
        out.put(EJECTED, 1.0 if view["ejected"] else 0.0, text)
        out.put(EJECTIONS, view["ejections"], text)
        # tcp mode's: absent from an http-mode view.
        out.put(CONNECTIONS, view.get("connections", 0), text)
        out.put(SENT, view.get("sent_bytes", 0), text)
        out.put(RECEIVED, view.get("received_bytes", 0), text)


def registry_for(
    stats: Callable[[], ProxyStats],
    views: Callable[[], list[dict[str, Any]]],
    refused_writes: Callable[[], int] = lambda: 0,
) -> Callable[[], bytes]:
    """What /metrics serves, rendered per scrape. `stats`: this process's counters, or the
    sum of the workers'; `views`: the peers, as /upstreams shows them."""

    def render() -> bytes:
        out = Exposition("ambassador", client_float)
        add_build_info(out)
        stats().add_families(out)
        add_peers(out, views())
        out.put(WRITES_REFUSED, refused_writes())
        return out.render() + process_metrics()

    return render
