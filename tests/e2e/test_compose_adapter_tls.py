"""The adapter pod secured, a flag away: `docker compose -f docker-compose.yml -f
compose/adapter-tls.yml up`. Prometheus scrapes the adapter over TLS (verifying the
certificate the one-shot made) with basic auth (the password from a file); wrong credentials
get 401 and the adapter's auth-failure counter rises; the password appears in no container
log, no container's configuration and no file of the repository.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import images
from support.compose import Project, project_up

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = ROOT / "compose" / "adapter-tls.yml"
WITHIN = 90.0
SERVICES = ("redis", "adapter-secrets", "adapter", "prometheus")
USER = "prometheus"


class Secured(Project):
    def query(self, promql: str) -> list[dict[str, Any]]:
        url = self.url("PROMETHEUS_HOST_PORT", "/api/v1/query?") + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def read(self, service: str, path: str) -> str:
        out = self.compose("exec", "-T", service, "cat", path)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def get(self, path: str, auth: tuple[str, str] | None, context: ssl.SSLContext) -> int:
        request = urllib.request.Request(self.url("ADAPTER_HOST_PORT", path, scheme="https"))
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            with exc:  # it holds the response: close it
                return exc.code


def wait_for(what: str, check: Callable[[], Any], within: float = WITHIN) -> Any:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(1)
    raise AssertionError(f"{what}: not within {within:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def secured(demo_images: dict[str, str]) -> Iterator[Secured]:
    # The one-shot runs the sidecar's image (sidecar.selfsign): built beside the others.
    env = {**demo_images, **images.build("sidecar")}
    with project_up(
        Secured,
        "adapter-tls",
        env,
        ["ADAPTER_HOST_PORT", "PROMETHEUS_HOST_PORT"],
        SERVICES,
        overrides=[OVERRIDE],
    ) as project:
        yield project


@pytest.fixture(scope="module")
def trusted(secured: Secured) -> ssl.SSLContext:
    """Trusting only the certificate the one-shot made, as Prometheus' tls_config does."""
    context = ssl.create_default_context(cadata=secured.read("adapter", "/secrets/tls.crt"))
    return context


def test_the_two_prometheus_configs_differ_only_in_the_adapters_scrape() -> None:
    plain = yaml.safe_load((ROOT / "compose" / "prometheus.yml").read_text())
    tls = yaml.safe_load((ROOT / "compose" / "prometheus-adapter-tls.yml").read_text())
    [job] = [j for j in tls["scrape_configs"] if j["job_name"] == "redis"]
    assert job.pop("scheme") == "https"
    assert job.pop("tls_config") == {
        "ca_file": "/etc/prometheus/secrets/tls.crt",
        "server_name": "redis",
    }
    assert job.pop("basic_auth") == {
        "username": USER,
        "password_file": "/etc/prometheus/secrets/password",
    }
    assert tls == plain


def test_prometheus_scrapes_the_adapter_over_tls_with_basic_auth(secured: Secured) -> None:
    def target() -> dict[str, Any] | None:
        url = secured.url("PROMETHEUS_HOST_PORT", "/api/v1/targets?state=active")
        with urllib.request.urlopen(url, timeout=5) as response:
            active = json.load(response)["data"]["activeTargets"]
        # Empty until Prometheus has loaded its targets.
        up = [t for t in active if t["labels"]["job"] == "redis" and t["health"] == "up"]
        return up[0] if up else None

    redis = wait_for("the adapter's target up", target)
    assert redis["scrapeUrl"] == "https://redis:9121/metrics"
    wait_for("redis_up 1 through TLS", lambda: secured.query('redis_up{job="redis"} == 1'))


def test_wrong_credentials_get_401_and_are_counted(
    secured: Secured, trusted: ssl.SSLContext
) -> None:
    def failures() -> float:
        result = secured.query("sum(redis_adapter_http_auth_failures_total)")
        return float(result[0]["value"][1]) if result else 0.0

    # Prometheus' own scrapes succeed: wait for the counter to be scraped once.
    wait_for("the adapter scraped", lambda: secured.query('up{job="redis"} == 1'))
    before = failures()
    assert secured.get("/metrics", None, trusted) == 401
    assert secured.get("/metrics", (USER, "not-the-password"), trusted) == 401
    assert secured.get("/metrics", ("someone", "else"), trusted) == 401
    # The kubelet's probes need no password.
    assert secured.get("/healthz", None, trusted) == 200
    wait_for("3 more auth failures counted", lambda: failures() >= before + 3)


def test_the_password_is_in_no_log_and_no_configuration(
    secured: Secured, trusted: ssl.SSLContext
) -> None:
    password = secured.read("prometheus", "/etc/prometheus/secrets/password")
    assert len(password) >= 24
    # It is the one that works.
    assert secured.get("/metrics", (USER, password), trusted) == 200
    # Nowhere in the logs of any container of the project, the one-shot's included.
    logs = secured.compose("logs", "--no-color", "--timestamps")
    assert logs.returncode == 0 and "adapter" in logs.stdout, logs.stderr
    assert password not in logs.stdout + logs.stderr
    # Not in any container's configuration (environment, command) as Docker holds it.
    for service in SERVICES:
        info = secured.inspect(service)
        assert password not in json.dumps(info["Config"]), service
    # Not in the configuration compose resolves from the files.
    config = secured.compose("config")
    assert config.returncode == 0 and password not in config.stdout
    # And the key is the adapter's alone; Prometheus' uid reads the password, not the key.
    mode = secured.compose("exec", "-T", "adapter", "stat", "-c", "%a %u", "/secrets/tls.key")
    assert mode.stdout.split() == ["600", "10001"], mode.stdout + mode.stderr
    unreadable = secured.compose(
        "exec", "-T", "prometheus", "cat", "/etc/prometheus/secrets/tls.key"
    )
    assert unreadable.returncode != 0


def test_the_secrets_are_not_committed() -> None:
    # Made at start-up only: no key or password file in compose/ or anywhere it mounts.
    out = subprocess.run(
        ["grep", "-rlE", "BEGIN (EC |RSA )?PRIVATE KEY", str(ROOT / "compose")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout == ""
