"""What is running: the `<service>_build_info` gauge every service exports (1, with the
facts as labels, as Prometheus' own `prometheus_build_info`)."""

from __future__ import annotations

import functools
import os
import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily


def engine_compiled() -> bool:
    """Whether the proxy engine runs as mypyc-compiled modules (setup.py). Imported here, not
    at the top: only the proxies load the engine, the other services never do."""
    from podkit.proxy import compiled

    return compiled()


@functools.cache  # importlib.metadata reads the dist-info from disk: once is enough
def package_version() -> str:
    try:
        return version("pod-patterns")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return ""


def labels(compiled: bool | None = None) -> dict[str, str]:
    """The build's facts; `compiled` None: the proxy engine's state, looked up."""
    if compiled is None:
        compiled = engine_compiled()
    return {
        "version": package_version(),
        # Baked into the images at build time (scripts/build-images.sh); empty elsewhere.
        "revision": os.environ.get("POD_PATTERNS_REVISION", ""),
        "python": platform.python_version(),
        # Whether compiled modules run here: only ever the proxies'.
        "compiled": "true" if compiled else "false",
    }


HELP = "Always 1; the labels say which build is running"


def build_info(prefix: str, compiled: bool | None = None) -> GaugeMetricFamily:
    """The gauge as a family, for services whose collectors yield families."""
    facts = labels(compiled)
    family = GaugeMetricFamily(f"{prefix}_build_info", HELP, labels=list(facts))
    family.add_metric(list(facts.values()), 1)
    return family


def register_build_info(registry: CollectorRegistry, prefix: str) -> None:
    """The gauge in a registry, for services that run no compiled modules."""
    facts = labels(compiled=False)
    Gauge(f"{prefix}_build_info", HELP, list(facts), registry=registry).labels(**facts).set(1)
