"""The adapter's own metrics: its families about the scrapes of one target (redis_exporter's
names where it has them), and the process_* / python_* metrics of the process."""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from adapter.connection import ERROR_KINDS, ScrapeError
from adapter.exposition import Exposition, Family, gauge, labels
from podkit import buildinfo

log = logging.getLogger(__name__)

# The adapter's own families (redis_exporter's names where it has them).
UP = gauge("up", "Information about the Redis instance")
SCRAPES = Family("exporter_scrapes_total", "counter", "Current total redis scrapes.")
SCRAPE_DURATION = Family(
    "exporter_scrape_duration_seconds", "summary", "Durations of scrapes by the exporter"
)
LAST_DURATION = gauge(
    "exporter_last_scrape_duration_seconds", "Seconds the last scrape of Redis took"
)
CONNECT_TIME = gauge(
    "exporter_last_scrape_connect_time_seconds",
    "Seconds the last scrape spent connecting (0 when the connection was kept)",
)
LAST_ERROR = gauge("exporter_last_scrape_error", "The last scrape error status.")
REQUEST_ERRORS = Family(
    "target_scrape_request_errors_total", "counter", "Errors in requests to the exporter"
)
SCRAPE_ERRORS = Family(
    "adapter_scrape_errors_total", "counter", "Failed scrapes of Redis by kind of failure"
)
BUILD_INFO = gauge("adapter_build_info", buildinfo.HELP)


@dataclass
class Counters:
    """What the adapter itself counts for one target, across scrapes."""

    scrapes: int = 0
    duration_sum: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


def _address_space_limit() -> float:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    # Go's client reports "unlimited" as the largest uint64; dashboards compare against it.
    return float(2**64 - 1) if soft == resource.RLIM_INFINITY else float(soft)


def process_metrics() -> bytes:
    """The adapter's own process_* and python_* metrics (redis_exporter has process_* too)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    limit = _address_space_limit()
    return (
        generate_latest(registry)
        + (
            "# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available "
            "in bytes.\n# TYPE process_virtual_memory_max_bytes gauge\n"
            f"process_virtual_memory_max_bytes {limit!r}\n"
        ).encode()
    )


def add_own(
    out: Exposition,
    c: Counters,
    error: ScrapeError | None,
    *,
    took: float,
    connect_seconds: float,
    request_errors: int,
    shown: str,
    build_info: bool,
) -> None:
    """The adapter's families about this scrape and the ones before it; the failure, if
    any, logged once (and its end once)."""
    c.scrapes += 1
    c.duration_sum += took
    if error is not None:
        c.errors[error.kind] = c.errors.get(error.kind, 0) + 1
        message = str(error)
        if message != c.last_error:  # say it once, not every scrape
            log.error("scrape of %s failed: %s", shown, message)
        c.last_error = message
    elif c.last_error:
        log.info("scrape of %s works again", shown)
        c.last_error = ""

    out.put(UP, 0.0 if error else 1.0)
    out.put(SCRAPES, float(c.scrapes))
    out.put(SCRAPE_DURATION, c.duration_sum, suffix="_sum")
    out.put(SCRAPE_DURATION, float(c.scrapes), suffix="_count")
    out.put(LAST_DURATION, took)
    out.put(CONNECT_TIME, connect_seconds)
    # redis_exporter puts the error text in `err`; here it is a short class (connect,
    # auth, timeout, tls, redis) so the label stays bounded. The text is in the log.
    out.put(LAST_ERROR, 1.0 if error else 0.0, labels((("err", error.kind if error else ""),)))
    out.put(REQUEST_ERRORS, float(request_errors))
    for kind in ERROR_KINDS:
        out.put(SCRAPE_ERRORS, float(c.errors.get(kind, 0)), labels((("kind", kind),)))
    if build_info:
        out.put(
            BUILD_INFO,
            1.0,
            labels(tuple(buildinfo.labels(compiled=False).items())),
        )
