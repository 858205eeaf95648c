"""The sidecar's /metrics: the engine's counters, certificates, and the process.

Written with podkit.exposition, not prometheus-client, whose import alone would add ~5 MiB
to every sidecar's resident memory."""

from __future__ import annotations

from collections.abc import Callable

from podkit.buildinfo import add_build_info
from podkit.exposition import Exposition, client_float, counter, gauge, labels
from podkit.process_metrics import process_metrics
from podkit.proxy.stats import ProxyStats
from sidecar.tls import HANDSHAKE_LABELS, CertStore

HANDSHAKE_FAILURES = counter(
    "tls_handshake_failures_total", "TLS handshakes that failed, by reason"
)
CLIENT_CERT_REFUSED = counter(
    "client_cert_refused_total",
    "Connections whose verified client certificate no --allow-* rule admitted",
)
CERT_NOT_AFTER = gauge(
    "cert_not_after_timestamp_seconds", "Expiry of each served certificate, as a Unix time"
)
CERT_RELOADS = counter("cert_reloads_total", "Certificate pairs reloaded")
CERT_RELOAD_FAILURES = counter(
    "cert_reload_failures_total", "Changed certificate pairs that were rejected"
)


def registry_for(
    stats: Callable[[], ProxyStats],
    certs: CertStore | None,
    refused: Callable[[], int],
) -> Callable[[], bytes]:
    """What /metrics serves, rendered per scrape. `stats`: this process's counters, or the
    sum of the workers'; `refused`: client certificates the --allow-* lists refused, likewise.
    """

    def render() -> bytes:
        out = Exposition("sidecar", client_float)
        add_build_info(out)
        proxy = stats()
        proxy.add_families(out)
        for reason in HANDSHAKE_LABELS:
            out.put(
                HANDSHAKE_FAILURES,
                proxy.handshake_failures.get(reason, 0),
                labels((("reason", reason),)),
            )
        out.put(CLIENT_CERT_REFUSED, refused())
        if certs is not None:
            out.declare(CERT_NOT_AFTER)
            for pair in certs.pairs:
                out.put(CERT_NOT_AFTER, pair.not_after, labels((("cert_file", pair.cert_file),)))
            out.put(CERT_RELOADS, certs.reloads)
            out.put(CERT_RELOAD_FAILURES, certs.reload_failures)
        return out.render() + process_metrics()

    return render
