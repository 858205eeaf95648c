"""The adapter pod of docker-compose.yml with Prometheus, up for real: the metrics of the pod's
Redis arrive in Prometheus through the adapter, and show what was written to Redis.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import metrics
from support.compose import Project, project_up

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# compose and the polls below have their own, much shorter bounds.
pytestmark = pytest.mark.timeout(600)

SCRAPED_WITHIN = 90.0  # seconds for Prometheus to have scraped what the test looks for
KEYS = 5
SERVICES = ("redis", "adapter", "prometheus")


class Demo(Project):
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
    """The adapter pod and Prometheus, up under a project of its own, on free host ports."""
    with project_up(
        Demo, "adapter", demo_images, ["ADAPTER_HOST_PORT", "PROMETHEUS_HOST_PORT"], SERVICES
    ) as demo:
        yield demo


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
