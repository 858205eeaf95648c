"""The process_* metrics every service built on podkit.exposition serves: what
prometheus-client's ProcessCollector renders through `generate_latest` (names, help, order,
its float format), read from /proc and written directly. A unit test holds the two side by
side.

Written here, not collected by prometheus-client: importing it would cost the proxies ~5 MiB
of resident memory, and in the adapter its registry and rendering cost ~100 µs a scrape.
"""

from __future__ import annotations

import os
import resource
from functools import cache

from podkit.exposition import client_float


def _head(name: str, help_text: str, kind: str = "gauge") -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{name} "


_TICKS = float(os.sysconf("SC_CLK_TCK"))
_PAGESIZE = resource.getpagesize()
_VMEM = _head("process_virtual_memory_bytes", "Virtual memory size in bytes.")
_RSS = _head("process_resident_memory_bytes", "Resident memory size in bytes.")
_START = _head(
    "process_start_time_seconds", "Start time of the process since unix epoch in seconds."
)
_CPU = _head(
    "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter"
)
_OPEN_FDS = _head("process_open_fds", "Number of open file descriptors.")
_MAX_FDS = _head("process_max_fds", "Maximum number of open file descriptors.")


@cache
def boot_time() -> float:
    """The host's boot time from /proc/stat; 0 where there is no /proc (no process_*)."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def process_families() -> list[str]:
    """Each process_* family as its text, without the final newline, in ProcessCollector's
    order: /proc/self/stat, then fds and limits; a part that cannot be read is left out."""
    btime = boot_time()
    if not btime:
        return []
    families = []
    try:
        with open("/proc/self/stat", "rb") as stat:
            parts = stat.read().split(b")")[-1].split()
        families += [
            _VMEM + client_float(float(parts[20])),
            _RSS + client_float(float(parts[21]) * _PAGESIZE),
            _START + client_float(float(parts[19]) / _TICKS + btime),
            _CPU + client_float(float(parts[11]) / _TICKS + float(parts[12]) / _TICKS),
        ]
    except OSError:
        pass
    try:
        max_fds = ""
        with open("/proc/self/limits", "rb") as limits:
            for line in limits:
                if line.startswith(b"Max open file"):
                    max_fds = client_float(float(line.split()[3]))
                    break
        families.append(_OPEN_FDS + client_float(len(os.listdir("/proc/self/fd"))))
        if max_fds:
            families.append(_MAX_FDS + max_fds)
    except OSError:
        pass
    return families


def process_metrics() -> bytes:
    """The process_* families as exposition text, to follow a service's own."""
    families = process_families()
    return ("\n".join(families) + "\n").encode() if families else b""
