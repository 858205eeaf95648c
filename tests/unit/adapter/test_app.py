"""The web layer, in process, against a Redis that is not there (port 1 refuses at once)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import metrics

from adapter.app import HEALTH, create_app, scrape_budget
from adapter.config import AdapterConfig

NOWHERE = "redis://127.0.0.1:1"


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    config = AdapterConfig(
        redis_addr=NOWHERE, scrape_allow=("redis://10.*:6379",), connection_timeout=2.0
    )
    app = create_app(config)
    app[HEALTH].ready = True
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_metrics_when_redis_is_down(client: TestClient) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = metrics.parse(await response.text())
    assert metrics.value(families, "redis_up") == 0
    assert metrics.value(families, "redis_exporter_last_scrape_error", err="connect") == 1
    assert "process_resident_memory_bytes" in families


async def test_gzip_when_asked(client: TestClient) -> None:
    response = await client.get(
        "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert b"redis_up 0" in gzip.decompress(await response.read())


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        pytest.param("", 400, "'target' parameter must be specified", id="missing"),
        pytest.param("?target=ftp://x:1", 400, "unsupported scheme", id="bad-scheme"),
        pytest.param("?target=redis://[::1", 400, "invalid redis:// address", id="bad-url"),
        pytest.param("?target=redis://evil:6379", 403, "is not allowed", id="not-allowed"),
        pytest.param(
            "?target=redis://u:pw@evil:6379",
            403,
            "redis://u:<redacted>@evil:6379",
            id="password-redacted",
        ),
        pytest.param(f"?target={NOWHERE}", 200, "redis_up 0", id="own-target"),
        pytest.param("?target=redis://10.1.2.3:6379", 200, "redis_up", id="allowlisted"),
    ],
)
async def test_scrape_targets(client: TestClient, query: str, status: int, text: str) -> None:
    response = await client.get("/scrape" + query)
    assert response.status == status
    assert text in await response.text()


async def test_probes(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    assert await (await client.get("/health")).text() == "ok"
    client.app[HEALTH].ready = False  # type: ignore[index]
    assert (await client.get("/readyz")).status == 503
    assert "Metrics" in await (await client.get("/")).text()


def test_scrape_budget_from_prometheus_header() -> None:
    class Req:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    assert scrape_budget(Req({"X-Prometheus-Scrape-Timeout-Seconds": "10"})) == 9.75  # type: ignore[arg-type]
    assert scrape_budget(Req({"X-Prometheus-Scrape-Timeout-Seconds": "0.1"})) == 0.1  # type: ignore[arg-type]
    assert scrape_budget(Req({"X-Prometheus-Scrape-Timeout-Seconds": "soon"})) is None  # type: ignore[arg-type]
    assert scrape_budget(Req({})) is None  # type: ignore[arg-type]


async def test_discovery_needs_is_cluster(client: TestClient) -> None:
    response = await client.get("/discover-cluster-nodes")
    assert response.status == 400
    assert await response.text() == "The discovery endpoint is only available on a redis cluster\n"


async def test_discovery_with_redis_down_is_a_500_not_a_crash() -> None:
    config = AdapterConfig(redis_addr=NOWHERE, is_cluster=True, connection_timeout=2.0)
    async with TestClient(TestServer(create_app(config))) as c:
        response = await c.get("/discover-cluster-nodes")
        assert response.status == 500
        assert (await response.text()).startswith("Couldn't connect to redis cluster: ")
        assert (await c.get("/health")).status == 200
