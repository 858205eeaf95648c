"""The adapter pod of docker-compose.yml with Prometheus, up for real: the metrics of the pod's
Redis arrive in Prometheus through the adapter, and show what was written to Redis.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import metrics
from support.images import ROOT

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# compose and the polls below have their own, much shorter bounds.
pytestmark = pytest.mark.timeout(600)

COMPOSE_FILE = ROOT / "docker-compose.yml"
UP_WITHIN = 90  # seconds for `up --wait`: every container started, the health-checked healthy
SCRAPED_WITHIN = 90.0  # seconds for Prometheus to have scraped what the test looks for
KEYS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    project: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, port_variable: str, path: str) -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}{path}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; its result vector."""
        url = self.url("PROMETHEUS_HOST_PORT", "/api/v1/query?") + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def wait_for(what: str, check: Callable[[], Any], within: float = SCRAPED_WITHIN) -> Any:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except OSError as exc:  # Prometheus not answering yet
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(1)
    raise AssertionError(f"{what}: not within {within:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def demo(demo_images: dict[str, str]) -> Iterator[Demo]:
    """`docker compose up -d --wait` under a project name of its own, on free host ports."""
    env = {
        **os.environ,
        **demo_images,  # the image names build-images.sh wrote to .env, explicitly
        "ADAPTER_HOST_PORT": str(free_port()),
        "PROMETHEUS_HOST_PORT": str(free_port()),
    }
    demo = Demo(f"pod-patterns-e2e-{os.getpid()}", env)
    try:
        up = demo.compose(
            "up", "-d", "--wait", "--wait-timeout", str(UP_WITHIN), timeout=UP_WITHIN + 60
        )
        if up.returncode != 0:
            logs = demo.compose("logs", "--no-color", "--tail", "50").stdout
            pytest.fail(f"docker compose up failed:\n{up.stderr}\n{logs}", pytrace=False)
        yield demo
    finally:
        down = demo.compose("down", "-v", "--remove-orphans", "--timeout", "10")
    # Reached only when nothing failed above, so it never hides the first error.
    assert down.returncode == 0, down.stderr


def test_adapter_shares_the_redis_containers_network(demo: Demo) -> None:
    ps = demo.compose("ps", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    # compose prints one JSON object per line (newer) or one array (older).
    text = ps.stdout.strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    ids = {row["Service"]: row["ID"] for row in rows}
    inspect = subprocess.run(
        ["docker", "inspect", ids["adapter"], ids["redis"]],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    adapter, redis = json.loads(inspect.stdout)
    assert adapter["HostConfig"]["NetworkMode"] == f"container:{redis['Id']}"
    assert adapter["HostConfig"]["ReadonlyRootfs"] is True
    assert adapter["State"]["Health"]["Status"] == "healthy"

    # The adapter's port is published by the container that owns the namespace.
    with urllib.request.urlopen(demo.url("ADAPTER_HOST_PORT", "/metrics"), timeout=5) as response:
        assert metrics.value(metrics.parse(response.read().decode()), "redis_up") == 1


def test_prometheus_scrapes_redis_up_1(demo: Demo) -> None:
    def up() -> bool:
        samples = demo.query('redis_up{job="redis"}')
        return any(
            s["metric"].get("instance") == "redis:9121" and s["value"][1] == "1" for s in samples
        )

    wait_for("redis_up == 1 in Prometheus", up)


def test_keys_written_to_redis_reach_prometheus(demo: Demo) -> None:
    pairs = [part for i in range(KEYS) for part in (f"e2e:{i}", str(i))]
    mset = demo.compose("exec", "-T", "redis", "redis-cli", "MSET", *pairs)
    assert mset.returncode == 0 and mset.stdout.strip() == "OK", mset.stdout + mset.stderr
    dbsize = demo.compose("exec", "-T", "redis", "redis-cli", "DBSIZE")
    assert dbsize.stdout.strip() == str(KEYS)

    def db0_keys() -> bool:
        by_db = {
            s["metric"].get("db"): s["value"][1] for s in demo.query("sum(redis_db_keys) by (db)")
        }
        return by_db.get("db0") == str(KEYS)

    wait_for(f"sum(redis_db_keys) by (db) with db0 = {KEYS}", db0_keys)
