"""The proxies stay small: neither the sidecar nor the ambassador loads prometheus-client
(~5 MiB resident: http.server, wsgiref, urllib.request, email...), importlib.metadata
(~3 MiB) or logging.config (~1 MiB). Each is checked in a fresh interpreter, the way the
services start, since an import anywhere on their path would bring it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("prometheus_client", "importlib.metadata", "logging.config")

# What `python -m sidecar` / `-m ambassador` import and run before they serve: options, logs,
# the admin routes and one scrape of each /metrics.
MAIN_PATH = """
import json, sys
import ambassador.__main__, sidecar.__main__
from ambassador.config import AmbassadorConfig
from ambassador.metrics import registry_for as ambassador_metrics
from podkit import logs
from podkit.admin_http import admin_routes
from podkit.health import Health
from podkit.options import load
from podkit.proxy.stats import ProxyStats
from sidecar.config import SidecarConfig
from sidecar.metrics import registry_for as sidecar_metrics

load(SidecarConfig, ["--plain", "--upstream", "http://127.0.0.1:1"], {}, prog="sidecar")
load(AmbassadorConfig, ["--upstream", "http://127.0.0.1:1"], {}, prog="ambassador")
logs.configure("info", "json")
admin_routes(Health(), sidecar_metrics(ProxyStats, None, lambda: 0))
assert b"sidecar_requests_total" in sidecar_metrics(ProxyStats, None, lambda: 0)()
assert b"ambassador_requests_total" in ambassador_metrics(ProxyStats, list, lambda: 0)()
print(json.dumps(sorted(name for name in %r if name in sys.modules)))
"""


def loaded(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code % (heavy,)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_the_proxies_main_path_loads_none_of_them() -> None:
    assert loaded(MAIN_PATH) == []


def test_the_check_sees_a_module_that_is_loaded() -> None:
    """The check itself: a module the path does load is reported."""
    assert loaded(MAIN_PATH, ("asyncio", *HEAVY)) == ["asyncio"]


@pytest.mark.parametrize("service", ["sidecar", "ambassador"])
def test_python_m_service_loads_none_of_them(service: str) -> None:
    """`python -m <service> --help`, every module it imports listed by -X importtime."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", service, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert f"{service}.service" in imported  # the list is the whole path
    assert sorted(imported & set(HEAVY)) == []


# The sidecar serving TLS: its certificate read, its contexts built, a scrape. cryptography
# (~10 MiB) is for mTLS and --send-proxy-v2 only, loaded when a client certificate is read.
TLS_PATH = """
import json, sys
from sidecar.config import SidecarConfig
from sidecar.metrics import registry_for
from sidecar.service import load_certs
from podkit.options import load
from podkit.proxy.stats import ProxyStats

config = load(SidecarConfig, sys.argv[1:], {}, prog="sidecar")
certs = load_certs(config)
certs.front_context()
assert b"sidecar_cert_not_after_timestamp_seconds" in registry_for(ProxyStats, certs, int)()
print(json.dumps(sorted(name for name in %r if name in sys.modules)))
"""


def test_the_sidecar_serving_tls_does_not_load_cryptography(tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("a.test")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TLS_PATH % (("cryptography", *HEAVY),),
            *("--cert-file", str(cert), "--key-file", str(key)),
            *("--upstream", "http://127.0.0.1:1"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []
