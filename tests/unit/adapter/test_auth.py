"""Basic auth on the metrics port: the check, and the middleware in the adapter's app."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import metrics

from adapter.app import HEALTH, create_app
from adapter.auth import CHALLENGE, BasicAuth
from adapter.config import AdapterConfig
from podkit.options import OptionError, build_parser, load, redacted

USER, PASSWORD = "prometheus", "s3cret-Pa55"
NOWHERE = "redis://127.0.0.1:1"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "want"),
    [
        pytest.param(basic(f"{USER}:{PASSWORD}"), None, id="right"),
        pytest.param("basic " + basic(f"{USER}:{PASSWORD}")[6:], None, id="scheme-any-case"),
        pytest.param(None, "missing", id="no-header"),
        pytest.param("", "missing", id="empty"),
        pytest.param("Bearer abc", "malformed", id="other-scheme"),
        pytest.param("Basic !!!", "malformed", id="not-base64"),
        pytest.param(basic(USER), "malformed", id="no-colon"),
        pytest.param(basic(f"{USER}:wrong"), "wrong", id="wrong-password"),
        pytest.param(basic(f"someone:{PASSWORD}"), "wrong", id="wrong-user"),
        pytest.param(basic(f"{USER}:{PASSWORD}x"), "wrong", id="longer-password"),
        pytest.param(basic(f"{USER}:"), "wrong", id="empty-password"),
    ],
)
def test_check(header: str | None, want: str | None) -> None:
    assert BasicAuth(USER, PASSWORD).check(header) == want


def test_password_may_hold_a_colon() -> None:
    assert BasicAuth("u", "a:b").check(basic("u:a:b")) is None


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    config = AdapterConfig(
        redis_addr=NOWHERE,
        connection_timeout=2.0,
        basic_auth_username=USER,
        basic_auth_password=PASSWORD,
    )
    app = create_app(config)
    app[HEALTH].ready = True
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.mark.parametrize("path", ["/metrics", f"/scrape?target={NOWHERE}", "/health", "/", "/x"])
async def test_every_path_needs_credentials(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert await response.text() == "Unauthorized\n"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_stay_open(client: TestClient, path: str) -> None:
    assert (await client.get(path)).status == 200


async def test_right_credentials_and_the_counter(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.auth"):
        await client.get("/metrics")
        await client.get("/metrics", headers={"Authorization": basic(f"{USER}:not-{PASSWORD}")})
        await client.get("/metrics", headers={"Authorization": basic(f"{USER}:again-{PASSWORD}")})
        await client.get("/metrics", headers={"Authorization": "Basic @@"})
    response = await client.get("/metrics", headers={"Authorization": basic(f"{USER}:{PASSWORD}")})
    assert response.status == 200
    families = metrics.parse(await response.text())
    assert metrics.value(families, "redis_up") == 0
    failures = "redis_adapter_http_auth_failures_total"
    assert metrics.value(families, failures, reason="missing") == 1
    assert metrics.value(families, failures, reason="wrong") == 2
    assert metrics.value(families, failures, reason="malformed") == 1
    assert families[failures].type == "counter"
    # one warning per refusal, saying where and why, never what was sent
    lines = [r.getMessage() for r in caplog.records if r.name == "adapter.auth"]
    assert len(lines) == 4
    assert lines[1] == "refused GET /metrics from 127.0.0.1: wrong credentials"
    assert PASSWORD not in caplog.text and USER not in caplog.text


async def test_no_auth_configured_no_counter() -> None:
    app = create_app(AdapterConfig(redis_addr=NOWHERE, connection_timeout=2.0))
    async with TestClient(TestServer(app)) as c:
        response = await c.get("/metrics")
        assert response.status == 200
        assert "http_auth_failures" not in await response.text()


def config(*argv: str, **env: str) -> AdapterConfig:
    return load(AdapterConfig, list(argv), env, prog="adapter")


def test_options_and_the_password_is_a_secret() -> None:
    c = config(
        "-basic-auth-username",
        USER,
        REDIS_EXPORTER_BASIC_AUTH_PASSWORD=PASSWORD,
    )
    assert (c.basic_auth_username, c.basic_auth_password) == (USER, PASSWORD)
    assert redacted(c)["basic_auth_password"] == "<redacted>"
    assert PASSWORD not in repr(redacted(c))
    assert (
        "REDIS_EXPORTER_BASIC_AUTH_USERNAME"
        in build_parser(AdapterConfig, "adapter", "").format_help()
    )
    assert c.warnings() == [
        "--basic-auth-username/--basic-auth-password without --tls-server-cert-file: "
        "scrapers send the password over plain HTTP"
    ]


@pytest.mark.parametrize(
    "fields", [{"basic_auth_username": USER}, {"basic_auth_password": PASSWORD}]
)
def test_one_without_the_other_stops_startup(fields: dict[str, str]) -> None:
    with pytest.raises(OptionError, match="go together") as raised:
        AdapterConfig(**fields)  # type: ignore[arg-type]
    assert PASSWORD not in str(raised.value)
