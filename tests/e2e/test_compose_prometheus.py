"""The whole demo of docker-compose.yml up, as `make up` starts it: Prometheus scrapes every
service with metrics (every target up in its own targets API) and has loaded the project's
rules (every group of monitoring/rules, each rule evaluated with health ok). Also the two
details a person meets in a browser: the UI address the compose file's header gives, and
plain http:// to the sidecar answered with a redirect to https://.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import images
from support.compose import Project, project_up

# Builds every image first (minutes on a fresh machine, seconds when cached); compose and
# the polls below have their own, shorter bounds.
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
WITHIN = 120.0  # seconds for every target to be scraped up and every rule evaluated
PORTS = [
    "ADAPTER_HOST_PORT",
    "PROMETHEUS_HOST_PORT",
    "SIDECAR_HOST_PORT",
    "SIDECAR_HTTP_HOST_PORT",
    "SIDECAR_ADMIN_HOST_PORT",
    "AMBASSADOR_HOST_PORT",
    "AMBASSADOR_ADMIN_HOST_PORT",
    "GITSYNC_PUSH_ADMIN_HOST_PORT",
    "SITE_HOST_PORT",
    "GITSYNC_PULL_ADMIN_HOST_PORT",
    "LOGAGENT_ADMIN_HOST_PORT",
    "CLIENT_AMBASSADOR_ADMIN_HOST_PORT",
    "REDIS_AMBASSADOR_HOST_PORT",
    "REDIS_AMBASSADOR_ADMIN_HOST_PORT",
]
# Every service with a /metrics, at its pod's address: (job, instance).
EXPECTED_TARGETS = {
    ("redis", "redis:9121"),  # the adapter, in Redis' pod
    ("sidecar", "web:9000"),
    ("ambassador", "ambassador:9000"),
    ("ambassador", "client:9000"),  # the in-pod ambassador, in the client's pod
    ("ambassador", "redis-ambassador:9000"),  # tcp mode
    ("gitsync", "notes:2020"),  # push
    ("gitsync", "site:2020"),  # pull
    ("logagent", "counter:9880"),
}


class Stack(Project):
    def api(self, path: str) -> Any:
        url = self.url("PROMETHEUS_HOST_PORT", path)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]


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
        time.sleep(1)
    raise AssertionError(f"{what}: not within {within:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def stack(docker_client: object) -> Iterator[Stack]:
    env = images.build()  # every image docker-compose.yml runs
    with project_up(Stack, "stack", env, PORTS) as stack:
        yield stack


def test_the_scrape_config_lists_every_service() -> None:
    config = yaml.safe_load((ROOT / "compose" / "prometheus.yml").read_text())
    listed = {
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert listed == EXPECTED_TARGETS


def test_every_service_is_scraped_up(stack: Stack) -> None:
    last: dict[tuple[str, str], str] = {}

    def all_up() -> bool:
        active = stack.api("/api/v1/targets?state=active")["activeTargets"]
        last.clear()
        last.update(
            {
                (t["labels"]["job"], t["labels"]["instance"]): t["health"] + " " + t["lastError"]
                for t in active
            }
        )
        return set(last) == EXPECTED_TARGETS and all(v.startswith("up") for v in last.values())

    try:
        wait_for("every target up", all_up)
    except AssertionError:
        pytest.fail(f"targets not all up: {last}", pytrace=False)
    # And each one's own metrics reached Prometheus: one family per service.
    for family, jobs in [
        ("redis_up", ["redis"]),
        ("sidecar_build_info", ["sidecar"]),
        ("ambassador_build_info", ["ambassador"] * 3),
        ("logagent_build_info", ["logagent"]),
    ]:
        result = stack.api(f"/api/v1/query?query={family}")["result"]
        assert [r["metric"]["job"] for r in result] == jobs, family


def test_the_rules_are_loaded_and_evaluate(stack: Stack) -> None:
    expected = [
        group["name"]
        for path in sorted((ROOT / "monitoring" / "rules").glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    assert expected
    last: dict[str, Any] = {}

    def all_ok() -> bool:
        groups = stack.api("/api/v1/rules")["groups"]
        last.clear()
        last.update({g["name"]: sorted({r["health"] for r in g["rules"]}) for g in groups})
        return sorted(last) == sorted(expected) and all(v == ["ok"] for v in last.values())

    try:
        wait_for("every rule group loaded, every rule health ok", all_ok)
    except AssertionError:
        pytest.fail(f"rule groups: {last} (expected {expected})", pytrace=False)
    # Nothing firing in a healthy demo but what has no alerting business: no TargetDown.
    firing = stack.api("/api/v1/alerts")["alerts"]
    assert not [a for a in firing if a["labels"]["alertname"] == "TargetDown"], firing


def test_the_ui_address_of_the_header_answers(stack: Stack) -> None:
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:", 1)[0]
    assert "localhost:9090/graph?g0.expr=up" in header
    # Official image: the React UI's /graph; the offline stand-in: redirected to /classic/.
    url = stack.url("PROMETHEUS_HOST_PORT", "/graph?g0.expr=up")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert "text/html" in response.headers["Content-Type"]
        assert "Prometheus" in response.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_plain_http_to_the_sidecar_is_redirected_to_https(stack: Stack) -> None:
    url = stack.url("SIDECAR_HTTP_HOST_PORT", "/some/page?x=1")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(url, timeout=5)
    with caught.value as answer:  # an HTTPError holds the response: close it
        assert answer.code == 308
        location = answer.headers["Location"]
    assert location == stack.url("SIDECAR_HOST_PORT", "/some/page?x=1", scheme="https")
    # Followed, it reaches the main container through TLS (self-signed: not verified here).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(location, timeout=5, context=context) as response:
        assert response.status == 200
        assert response.read().decode().startswith("server: web\n")
