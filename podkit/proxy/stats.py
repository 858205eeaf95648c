"""What the engine counts, kept as plain numbers on the hot path and turned into Prometheus
families only when /metrics is scraped (a prometheus-client child per request would cost
more than the request's whole budget of a few µs)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from podkit.exposition import Exposition, counter, gauge, histogram, labels

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = {
    m: m.decode()
    for m in (
        b"GET",
        b"HEAD",
        b"POST",
        b"PUT",
        b"DELETE",
        b"OPTIONS",
        b"PATCH",
        b"CONNECT",
        b"TRACE",
    )
}
STATUS_TEXT = {code: str(code) for code in range(100, 600)}
UPSTREAM_ERROR_KINDS = ("connect", "timeout", "reset", "invalid_response", "status")
REJECT_REASONS = (
    "malformed",
    "header_timeout",
    "body_timeout",
    "header_too_large",
    "body_too_large",
    "framing_lookalike",
    "proxy_protocol",
)

# The families, named without the service's prefix (the Exposition's namespace).
REQUESTS = counter("requests_total", "Requests answered, by method and status code")
DURATION = histogram(
    "request_duration_seconds", "Time from the end of the request head to the end of the response"
)
RECEIVED = counter("received_bytes_total", "Bytes received from clients")
SENT = counter("sent_bytes_total", "Bytes sent to clients")
CONNECTIONS = gauge("connections", "Open client connections")
ACCEPTED = counter("accepted_connections_total", "Client connections accepted")
UPSTREAM_ERRORS = counter("upstream_errors_total", "Failed upstream attempts, by kind")
REJECTED = counter("rejected_requests_total", "Requests refused by the proxy itself, by reason")


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class ProxyStats:
    """Counters of one proxy process."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.duration = Histogram()
        self.bytes_in = 0
        self.bytes_out = 0
        self.connections_active = 0
        self.connections_total = 0
        self.upstream_errors: dict[str, int] = {}
        self.rejected: dict[str, int] = {}  # requests the engine refused itself, by reason
        self.handshake_failures: dict[str, int] = {}  # TLS, filled by the service that does it

    def request(self, method: bytes, status: int, seconds: float) -> None:
        key = (METHODS.get(method, "other"), STATUS_TEXT.get(status) or str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self.duration.observe(seconds)

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] = self.upstream_errors.get(kind, 0) + 1

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    # Workers send snapshots to the supervisor, which adds them up.
    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": [[m, c, n] for (m, c), n in self.requests.items()],
            "duration": self.duration.counts,
            "duration_total": self.duration.total,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "connections_active": self.connections_active,
            "connections_total": self.connections_total,
            "upstream_errors": self.upstream_errors,
            "rejected": self.rejected,
            "handshake_failures": self.handshake_failures,
        }

    @classmethod
    def merged(cls, snapshots: Iterable[dict[str, Any]]) -> ProxyStats:
        total = cls()
        for snap in snapshots:
            for method, code, n in snap["requests"]:
                total.requests[(method, code)] = total.requests.get((method, code), 0) + n
            total.duration.counts = [
                a + b for a, b in zip(total.duration.counts, snap["duration"], strict=True)
            ]
            total.duration.total += snap["duration_total"]
            for name in ("bytes_in", "bytes_out", "connections_active", "connections_total"):
                setattr(total, name, getattr(total, name) + snap[name])
            for kind, n in snap["upstream_errors"].items():
                total.upstream_errors[kind] = total.upstream_errors.get(kind, 0) + n
            for reason, n in snap["rejected"].items():
                total.rejected[reason] = total.rejected.get(reason, 0) + n
            for reason, n in snap["handshake_failures"].items():
                total.handshake_failures[reason] = total.handshake_failures.get(reason, 0) + n
        return total

    def add_families(self, out: Exposition) -> None:
        """The counters as families, into a scrape's exposition."""
        out.declare(REQUESTS)  # before the first request too
        for (method, code), n in sorted(self.requests.items()):
            # Label names in order, as prometheus-client wrote them: code before method.
            out.put(REQUESTS, n, labels((("code", code), ("method", method))))
        out.put_histogram(DURATION, self.duration.cumulative(), self.duration.total)
        out.put(RECEIVED, self.bytes_in)
        out.put(SENT, self.bytes_out)
        out.put(CONNECTIONS, self.connections_active)
        out.put(ACCEPTED, self.connections_total)
        for kind in UPSTREAM_ERROR_KINDS:
            out.put(UPSTREAM_ERRORS, self.upstream_errors.get(kind, 0), labels((("kind", kind),)))
        for reason in REJECT_REASONS:
            out.put(REJECTED, self.rejected.get(reason, 0), labels((("reason", reason),)))
