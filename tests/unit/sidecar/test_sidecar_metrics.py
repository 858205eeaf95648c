"""sidecar.metrics: /metrics as the sidecar serves it, written without prometheus-client (the
text it wrote before: `_total` counters, floats as "3.0", labels in name order)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from support import metrics

from podkit.proxy.stats import ProxyStats
from sidecar.metrics import registry_for
from sidecar.tls import HANDSHAKE_LABELS


@dataclass
class Pair:
    cert_file: str
    not_after: float


@dataclass
class Certs:
    """What /metrics reads of a CertStore."""

    pairs: list[Pair] = field(default_factory=lambda: [Pair("/certs/tls.crt", 1767225600.0)])
    reloads: int = 2
    reload_failures: int = 1


def stats() -> ProxyStats:
    s = ProxyStats()
    s.request(b"GET", 200, 0.0004)
    s.request(b"GET", 200, 0.3)
    s.request(b"BREW", 418, 12.0)
    s.bytes_in, s.bytes_out, s.connections_active, s.connections_total = 1234, 10**7, 2, 99
    s.upstream_error("connect")
    s.reject("malformed")
    s.handshake_failures["timeout"] = 4
    return s


def render(certs: Certs | None) -> str:
    return registry_for(stats, certs, lambda: 5)().decode()  # type: ignore[arg-type]


def test_the_sidecars_families() -> None:
    text = render(Certs())
    lines = set(text.splitlines())
    for line in (
        "# HELP sidecar_requests_total Requests answered, by method and status code",
        "# TYPE sidecar_requests_total counter",
        'sidecar_requests_total{code="200",method="GET"} 2.0',
        'sidecar_requests_total{code="418",method="other"} 1.0',
        "# TYPE sidecar_request_duration_seconds histogram",
        'sidecar_request_duration_seconds_bucket{le="0.001"} 1.0',
        'sidecar_request_duration_seconds_bucket{le="1.0"} 2.0',
        'sidecar_request_duration_seconds_bucket{le="10.0"} 2.0',
        'sidecar_request_duration_seconds_bucket{le="+Inf"} 3.0',
        "sidecar_request_duration_seconds_count 3.0",
        "sidecar_request_duration_seconds_sum 12.3004",
        "sidecar_sent_bytes_total 1e+07",
        "sidecar_received_bytes_total 1234.0",
        "# TYPE sidecar_connections gauge",
        "sidecar_connections 2.0",
        "sidecar_accepted_connections_total 99.0",
        'sidecar_upstream_errors_total{kind="connect"} 1.0',
        'sidecar_rejected_requests_total{reason="malformed"} 1.0',
        'sidecar_tls_handshake_failures_total{reason="timeout"} 4.0',
        "sidecar_client_cert_refused_total 5.0",
        'sidecar_cert_not_after_timestamp_seconds{cert_file="/certs/tls.crt"} 1.7672256e+09',
        "sidecar_cert_reloads_total 2.0",
        "sidecar_cert_reload_failures_total 1.0",
        "# TYPE process_cpu_seconds_total counter",
    ):
        assert line in lines, line
    build = [line for line in lines if line.startswith("sidecar_build_info{")]
    assert len(build) == 1 and build[0].startswith('sidecar_build_info{compiled="')
    assert "_created" not in text
    families = metrics.parse(text)
    assert len(families["sidecar_tls_handshake_failures_total"].samples) == len(HANDSHAKE_LABELS)
    # Valid text by prometheus-client's own parser, every family typed as declared.
    parsed = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert parsed["sidecar_requests"] == "counter"
    assert parsed["sidecar_request_duration_seconds"] == "histogram"
    assert parsed["sidecar_cert_not_after_timestamp_seconds"] == "gauge"


def test_without_certificates_no_certificate_families() -> None:
    text = render(None)
    assert "sidecar_cert_" not in text
    assert "sidecar_client_cert_refused_total 5.0\n" in text
