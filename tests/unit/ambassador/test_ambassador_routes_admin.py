"""The config file's groups and routes, the next_upstream conditions, and the admin port's
write fence (loopback or token; 403, counted and logged otherwise)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from ambassador.admin import WriteFence, write_handler
from ambassador.config import AmbassadorConfig
from ambassador.groups import parse_next_upstream
from ambassador.routes import Route, load_layout
from podkit.admin_http import Request
from podkit.options import OptionError, load
from podkit.proxy.head import RequestHead
from podkit.proxy.settings import NEXT_ERROR, NEXT_TIMEOUT

DEFAULTS = {
    "method": "round_robin",
    "hash_key": "ip",
    "health_path": "",
    "health_interval": 5.0,
    "health_timeout": 2.0,
    "health_rise": 2,
    "health_fall": 3,
}
ROUTED = """\
upstreams: [a:1]
next_upstream: [error, timeout, http_503]
next_upstream_tries: 3
timeouts: {connect: 1s, read: 2s, send: 3s}
groups:
  canary:
    upstreams: ["c:1 slow_start=30s", "d:1 drain"]
    method: least_conn
    next_upstream: off
    outlier: {consecutive_5xx: 5, base_ejection_time: 10s, max_ejection_percent: 50}
  api:
    upstreams: [e:1]
routes:
  - {header: "X-Canary: always", group: canary}
  - {cookie: "canary=1", group: canary}
  - {host: api.example.test, path_prefix: /v2/, group: api}
  - {host: "*.api.test", group: api}
"""


def config(tmp_path: Path, text: str, *argv: str) -> AmbassadorConfig:
    path = tmp_path / "ambassador.yaml"
    path.write_text(text, encoding="utf-8")
    return load(AmbassadorConfig, ["--config", str(path), *argv], {}, prog="ambassador")


def head(url: bytes = b"/", host: bytes = b"x", **headers: str) -> RequestHead:
    h = RequestHead("10.0.0.1")
    h.url, h.host = url, host
    h.headers = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return h


def test_groups_routes_and_their_settings(tmp_path: Path) -> None:
    layout = config(tmp_path, ROUTED).layout()
    default, canary, api = (layout.groups[n] for n in ("default", "canary", "api"))
    assert default.next_upstream_mask == NEXT_ERROR | NEXT_TIMEOUT
    assert default.next_upstream_statuses == {503} and default.next_upstream_tries == 3
    assert (default.connect_timeout, default.read_timeout, default.send_timeout) == (1, 2, 3)
    assert canary.method == "least_conn" and canary.next_upstream == frozenset()
    assert canary.servers[0].slow_start == 30 and canary.servers[1].drain
    assert (canary.outlier.consecutive_5xx, canary.outlier.base_ejection_time) == (5, 10)
    assert api.next_upstream_statuses == set()  # a group's own keys only: flags' defaults

    def routed(h: RequestHead) -> str:
        return next((r.group for r in layout.routes if r.matches(h)), "default")

    assert routed(head()) == "default"
    assert routed(head(X_Canary="always")) == "canary"
    assert routed(head(X_Canary="never")) == "default"
    assert routed(head(Cookie="a=b; canary=1")) == "canary"
    assert routed(head(Cookie="canary=0")) == "default"
    assert routed(head(b"/v2/users", b"API.example.test:8080")) == "api"
    assert routed(head(b"/v1/users", b"api.example.test")) == "default"
    assert routed(head(b"/", b"eu.api.test")) == "api"
    assert routed(head(b"/", b"api.test")) == "default"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("upstreams: [a:1]\nroutes: [{host: x, group: b}]\n", "no known group"),
        pytest.param(
            "upstreams: [a:1]\ngroups: {b: {upstreams: [b:1]}}\nroutes: [{group: b}]\n",
            "no condition",
        ),
        pytest.param("upstreams: [a:1]\nroutes: [{hots: x, group: default}]\n", "hots"),
        pytest.param("upstreams: [a:1]\nnext_upstream: [http_418]\n", "http_418"),
        pytest.param("upstreams: [a:1]\nnext_upstream: [off, error]\n", "stands alone"),
        pytest.param("upstreams: [a:1]\ngroups: {b: {upstreams: []}}\n", "group 'b'"),
        pytest.param("upstreams: [a:1]\ntimeouts: {connect: x}\n", "connect"),
        pytest.param("upstreams: [a:1]\noutlier: {consecutive_5xxx: 1}\n", "consecutive_5xxx"),
        pytest.param("upstreams: [a:1 slow_start=1s]\nmethod: hash\n", "slow_start"),
    ],
)
def test_bad_layouts_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "ambassador.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OptionError, match=expected):
        load_layout(str(path), DEFAULTS)


def test_next_upstream_flag_and_non_idempotent(tmp_path: Path) -> None:
    assert parse_next_upstream("error, timeout http_502") == {"error", "timeout", "http_502"}
    c = load(
        AmbassadorConfig,
        [
            "--upstream",
            "a:1",
            "--next-upstream",
            "error http_503",
            "--next-upstream-non-idempotent",
        ],
        {},
        prog="ambassador",
    )
    assert c.group().next_upstream == {"error", "http_503", "non_idempotent"}


def test_route_header_presence() -> None:
    route = Route("x", header=(b"x-debug", None))
    assert route.matches(head(X_Debug=""))
    assert not route.matches(head())


# -- the admin port's writes -------------------------------------------------------------------


def patch(peer: str, body: dict[str, object], token: str = "") -> Request:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Request("PATCH", "/upstreams", headers, json.dumps(body).encode(), peer)


def test_writes_are_fenced_by_loopback_or_token(caplog: pytest.LogCaptureFixture) -> None:
    applied: list[dict[str, object]] = []

    def apply(change: dict[str, object]) -> list[dict[str, object]]:
        applied.append(change)
        return [change]

    fence = WriteFence(lambda: "s3cret")
    handler = write_handler(fence, apply)
    change = {"server": "http://a:1", "drain": True}

    async def run(request: Request) -> int:
        return (await handler(request)).status  # type: ignore[no-any-return]

    with caplog.at_level(logging.WARNING, "ambassador.admin"):
        assert asyncio.run(run(patch("10.1.2.3", change))) == 403
        assert asyncio.run(run(patch("10.1.2.3", change, token="wrong"))) == 403
    assert fence.refused == 2 and applied == []
    assert "admin write refused: PATCH /upstreams from 10.1.2.3" in caplog.text
    assert asyncio.run(run(patch("10.1.2.3", change, token="s3cret"))) == 200
    assert asyncio.run(run(patch("127.0.0.1", change))) == 200
    assert asyncio.run(run(patch("::1", change))) == 200
    assert asyncio.run(run(patch("::ffff:127.0.0.1", change))) == 200
    assert len(applied) == 4 and fence.refused == 2
    assert asyncio.run(run(patch("127.0.0.1", {"server": "x"}))) == 400  # nothing to change
    # Without a token file, only loopback may write.
    assert (
        asyncio.run(
            write_handler(WriteFence(lambda: ""), apply)(patch("10.1.2.3", change, "x"))
        ).status
        == 403
    )
