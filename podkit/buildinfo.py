"""What is running: the `<service>_build_info` gauge every service exports (1, with the
facts as labels, as Prometheus' own `prometheus_build_info`)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client.core import GaugeMetricFamily

from podkit.proxy import compiled


def package_version() -> str:
    try:
        return version("pod-patterns")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return ""


def labels() -> dict[str, str]:
    return {
        "version": package_version(),
        # Baked into the images at build time (scripts/build-images.sh); empty elsewhere.
        "revision": os.environ.get("POD_PATTERNS_REVISION", ""),
        "python": platform.python_version(),
        # Whether the proxy engine runs as mypyc-compiled modules (setup.py).
        "compiled": "true" if compiled() else "false",
    }


def build_info(prefix: str) -> GaugeMetricFamily:
    facts = labels()
    family = GaugeMetricFamily(
        f"{prefix}_build_info",
        "Always 1; the labels say which build is running",
        labels=list(facts),
    )
    family.add_metric(list(facts.values()), 1)
    return family
