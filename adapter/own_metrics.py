"""The adapter's own metrics: its families about the scrapes of one target (redis_exporter's
names where it has them), and the process_* / python_* metrics of the process.

The process_* / python_* text is what prometheus-client's Process, Platform and GC collectors
render through `generate_latest` (names, help, order, its float format), written here
directly: the registry and its rendering cost ~100 µs a scrape, this ~15 µs. A unit test
holds the two side by side.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from prometheus_client import utils

from adapter.connection import ERROR_KINDS, ScrapeError
from adapter.exposition import Exposition, Family, gauge, labels
from podkit import buildinfo

log = logging.getLogger(__name__)

# prometheus-client's own float format (Go's, e.g. 4.8553984e+07), so the text is its text.
go_string: Callable[[float], str] = utils.floatToGoString

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


@cache
def build_info_labels() -> str:
    # Looked up once: the installed version does not change under a running process, and
    # importlib.metadata's lookup costs ~0.4 ms, a fifth of a scrape.
    return labels(tuple(buildinfo.labels(compiled=False).items()))


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


def _process_head(name: str, help_text: str, kind: str = "gauge") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} "


_TICKS = float(os.sysconf("SC_CLK_TCK"))
_PAGESIZE = resource.getpagesize()
_VMEM = _process_head("process_virtual_memory_bytes", "Virtual memory size in bytes.")
_RSS = _process_head("process_resident_memory_bytes", "Resident memory size in bytes.")
_START = _process_head(
    "process_start_time_seconds", "Start time of the process since unix epoch in seconds."
)
_CPU = _process_head(
    "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter"
)
_OPEN_FDS = _process_head("process_open_fds", "Number of open file descriptors.")
_MAX_FDS = _process_head("process_max_fds", "Maximum number of open file descriptors.")
_GC_FAMILIES = (
    ("python_gc_objects_collected_total", "Objects collected during gc", "collected"),
    (
        "python_gc_objects_uncollectable_total",
        "Uncollectable objects found during GC",
        "uncollectable",
    ),
    ("python_gc_collections_total", "Number of times this generation was collected", "collections"),
)


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


@cache
def _static() -> tuple[float, str]:
    """What does not change while the process runs: boot time (0 without /proc) and
    python_info, as PlatformCollector renders it."""
    try:
        btime = _boot_time()
    except OSError:
        btime = 0.0
    major, minor, patchlevel = platform.python_version_tuple()
    info = labels(
        (
            ("implementation", platform.python_implementation()),
            ("major", major),
            ("minor", minor),
            ("patchlevel", patchlevel),
            ("version", platform.python_version()),
        )
    )
    python_info = (
        "# HELP python_info Python platform information\n# TYPE python_info gauge\n"
        f"python_info{info} 1.0"
    )
    return btime, python_info


def _process_lines(btime: float) -> list[str]:
    # As ProcessCollector.collect: /proc/self/stat, then limits and fds; a part that cannot
    # be read is left out.
    if not btime:
        return []
    lines = []
    try:
        with open("/proc/self/stat", "rb") as stat:
            parts = stat.read().split(b")")[-1].split()
        lines += [
            _VMEM + go_string(float(parts[20])),
            _RSS + go_string(float(parts[21]) * _PAGESIZE),
            _START + go_string(float(parts[19]) / _TICKS + btime),
            _CPU + go_string(float(parts[11]) / _TICKS + float(parts[12]) / _TICKS),
        ]
    except OSError:
        pass
    try:
        max_fds = ""
        with open("/proc/self/limits", "rb") as limits:
            for line in limits:
                if line.startswith(b"Max open file"):
                    max_fds = go_string(float(line.split()[3]))
                    break
        lines.append(_OPEN_FDS + go_string(len(os.listdir("/proc/self/fd"))))
        if max_fds:
            lines.append(_MAX_FDS + max_fds)
    except OSError:
        pass
    return lines


def process_metrics() -> bytes:
    """The adapter's own process_* and python_* metrics (redis_exporter has process_* too)."""
    btime, python_info = _static()
    lines = _process_lines(btime)
    lines.append(python_info)
    gc_stats = gc.get_stats()
    for name, help_text, key in _GC_FAMILIES:
        lines.append(f"# HELP {name} {help_text}\n# TYPE {name} counter")
        for generation, stats in enumerate(gc_stats):
            lines.append(f'{name}{{generation="{generation}"}} {go_string(stats[key])}')
    lines.append(
        "# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available "
        "in bytes.\n# TYPE process_virtual_memory_max_bytes gauge\n"
        f"process_virtual_memory_max_bytes {_address_space_limit()!r}\n"
    )
    return "\n".join(lines).encode()


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
        out.put(BUILD_INFO, 1.0, build_info_labels())
