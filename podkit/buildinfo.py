"""What is running: the `<service>_build_info` gauge every service exports (1, with the
facts as labels, as Prometheus' own `prometheus_build_info`)."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

from podkit import __version__, exposition

if TYPE_CHECKING:  # only the services that keep prometheus-client pass a registry
    from prometheus_client import CollectorRegistry


def engine_compiled() -> bool:
    """Whether the proxy engine runs as mypyc-compiled modules (setup.py). Imported here, not
    at the top: only the proxies load the engine, the other services never do."""
    from podkit.proxy import compiled

    return compiled()


def labels(compiled: bool | None = None) -> dict[str, str]:
    """The build's facts; `compiled` None: the proxy engine's state, looked up."""
    if compiled is None:
        compiled = engine_compiled()
    return {
        # podkit.__version__, which pyproject.toml reads too: importlib.metadata would find
        # the same string at the cost of ~3 MiB of memory.
        "version": __version__,
        # Baked into the images at build time (scripts/build-images.sh); empty elsewhere.
        "revision": os.environ.get("POD_PATTERNS_REVISION", ""),
        "python": platform.python_version(),
        # Whether compiled modules run here: only ever the proxies'.
        "compiled": "true" if compiled else "false",
    }


HELP = "Always 1; the labels say which build is running"
BUILD_INFO = exposition.gauge("build_info", HELP)


def add_build_info(out: exposition.Exposition, compiled: bool | None = None) -> None:
    """The gauge into a scrape's exposition, as `<namespace>_build_info`; labels in name
    order, as prometheus-client wrote them."""
    out.put(BUILD_INFO, 1, exposition.labels(sorted(labels(compiled).items())))


def register_build_info(registry: CollectorRegistry, prefix: str) -> None:
    """The gauge in a prometheus-client registry, for services that run no compiled
    modules and keep prometheus-client (gitsync, logagent)."""
    from prometheus_client import Gauge

    facts = labels(compiled=False)
    Gauge(f"{prefix}_build_info", HELP, list(facts), registry=registry).labels(**facts).set(1)
