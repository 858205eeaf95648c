"""/upstreams without a server: which peers a change names and what it sets on them, and the
workers' views added up (counters summed, a peer up only if every worker sees it up)."""

from __future__ import annotations

from typing import Any

import pytest

from ambassador.balancer import Balancer, Peer
from ambassador.upstreams import change_peers, merge_views, views_of
from podkit.proxy import ProxySettings, Upstream


def peer(name: str, **params: Any) -> Peer:
    return Peer(name=name, upstream=Upstream(f"http://{name}:80", ProxySettings()), **params)


def groups() -> dict[str, Balancer]:
    return {
        "default": Balancer([peer("a"), peer("b", slow_start=30.0)]),
        "api": Balancer([peer("c")]),
    }


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        pytest.param({"server": "a", "drain": True}, [("default", "a")], id="by-server"),
        pytest.param({"address": "http://c:80", "down": True}, [("api", "c")], id="by-address"),
        pytest.param({"group": "api", "server": "a", "drain": True}, [], id="other-group"),
        pytest.param({"server": "nope", "drain": True}, [], id="no-such-peer"),
    ],
)
def test_a_change_sets_only_the_peers_it_names(
    change: dict[str, Any], changed: list[tuple[str, str]]
) -> None:
    balancers = groups()
    views = change_peers(balancers, change)
    assert [(v["group"], v["server"]) for v in views] == changed
    out = {(v["group"], v["server"]) for v in views_of(balancers) if v["drain"] or v["down"]}
    assert out == set(changed)


def test_back_from_drain_starts_a_slow_start() -> None:
    balancers = groups()
    change_peers(balancers, {"server": "b", "drain": True})
    (view,) = change_peers(balancers, {"server": "b", "drain": False})
    assert view["drain"] is False and view["available"] is True
    assert 0 < view["weight_share"] < 1  # ramping up again over its slow_start


def test_worker_views_are_added_up() -> None:
    first, second = views_of(groups()), views_of(groups())
    second[0].update(healthy=False, available=False, effective_weight=0, active_requests=2)
    second[0]["responses"] = {"200": 3}
    second[0]["latency"]["counts"] = [1] * len(second[0]["latency"]["counts"])
    merged = merge_views([first, second])
    assert len(merged) == 3  # one per peer, not per worker
    a = merged[0]
    assert (a["server"], a["healthy"], a["available"]) == ("a", False, False)
    assert a["effective_weight"] == 0 and a["active_requests"] == 2
    assert a["responses"] == {"200": 3}
    assert a["latency"]["counts"] == second[0]["latency"]["counts"]
    assert first[0]["healthy"] is True  # the workers' views are not changed
