"""nginx's smooth weighted round robin: the pick sequence, peer for peer, against the
reference transcribed from ngx_http_upstream_round_robin.c (balancer_reference.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from balancer_reference import smooth_wrr
from balancer_twins import Twins, make_balancer, pick_names

from ambassador.balancer import Tried

WEIGHT_SETS = [
    [3, 1],
    [5, 1, 1],
    [1, 1, 1],
    [2, 3, 5],
    [10, 1],
    [1, 10],
    [7],
    [4, 4, 2, 1, 3],
    [100, 1, 50],
]


def names(indexes: list[int]) -> list[str]:
    return [chr(ord("a") + i) for i in indexes]


@pytest.mark.parametrize("weights", WEIGHT_SETS, ids=lambda w: "-".join(map(str, w)))
def test_sequence_is_nginx_smooth_wrr(weights: list[int]) -> None:
    balancer, _ = make_balancer(weights)
    assert pick_names(balancer, 1000) == names(smooth_wrr(weights, 1000))


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        pytest.param([5, 1, 1], "aabacaa", id="nginx-comment-5-1-1"),
        pytest.param([3, 1], "aaba", id="3-1"),
        pytest.param([1, 1, 1], "abcabc", id="equal"),
        pytest.param([2, 3, 5], "cbacbccabc", id="2-3-5"),
    ],
)
def test_known_sequences(weights: list[int], expected: str) -> None:
    # {5, 1, 1} → a a b a c a a is the example in nginx's own changeset (1.1.x, r4236).
    balancer, _ = make_balancer(weights)
    assert "".join(pick_names(balancer, len(expected))) == expected
    assert "".join(names(smooth_wrr(weights, len(expected)))) == expected


@pytest.mark.parametrize("weights", WEIGHT_SETS, ids=lambda w: "-".join(map(str, w)))
def test_each_cycle_gives_each_peer_its_weight(weights: list[int]) -> None:
    balancer, _ = make_balancer(weights)
    total = sum(weights)
    for _ in range(3):
        cycle = pick_names(balancer, total)
        assert [cycle.count(n) for n in names(list(range(len(weights))))] == weights


def test_state_returns_to_zero_after_a_cycle() -> None:
    balancer, peers = make_balancer([5, 1, 1])
    pick_names(balancer, 7)
    assert [p.current_weight for p in peers.values()] == [0, 0, 0]
    assert [p.effective_weight for p in peers.values()] == [5, 1, 1]


def test_down_peers_are_never_chosen_and_the_rest_keep_nginx_order() -> None:
    servers: list[dict[str, Any]] = [{"weight": 2}, {"weight": 5, "down": True}, {"weight": 1}]
    twins = Twins(servers)
    seq = []
    for _ in range(300):
        tried, rrp = twins.start()
        ours, theirs = twins.pick(tried, rrp)
        assert ours == theirs
        assert ours is not None
        seq.append(ours)
        twins.finish(ours, rrp, failed=False)
    assert "b" not in seq
    assert seq[:3] == ["a", "c", "a"]


def test_max_conns_skips_a_full_peer() -> None:
    balancer, peers = make_balancer(servers=[{"weight": 5, "max_conns": 2}, {"weight": 1}])
    peers["a"].upstream.active = 2
    assert pick_names(balancer, 5) == ["b"] * 5
    peers["a"].upstream.active = 1
    assert balancer.pick(Tried()) is peers["a"]


def test_all_peers_full_or_down_gives_none() -> None:
    balancer, peers = make_balancer(servers=[{"down": True}, {"max_conns": 1}])
    peers["b"].upstream.active = 1
    assert balancer.pick(Tried()) is None


def test_tried_peers_are_not_picked_again_in_one_request() -> None:
    balancer, _ = make_balancer([5, 1, 1])
    tried = Tried()
    picked = [balancer.pick(tried) for _ in range(4)]
    assert [p.name if p else None for p in picked] == ["a", "b", "c", None]


def test_a_retry_moves_on_in_nginx_order() -> None:
    # A request whose first attempt fails: nginx's second pick skips the tried peer only.
    twins = Twins([{"weight": 3}, {"weight": 2}, {"weight": 1}])
    tried, rrp = twins.start()
    first = twins.pick(tried, rrp)
    assert first == ("a", "a")
    twins.finish("a", rrp, failed=True)
    assert twins.pick(tried, rrp) == ("b", "b")
    assert twins.state() == twins.ngx_state()


def test_unhealthy_peers_are_skipped() -> None:
    # Active health checks are the ambassador's own (nginx open source has none): a peer the
    # checker took out is skipped like a down one.
    balancer, peers = make_balancer([1, 1, 1])
    peers["b"].healthy = False
    assert pick_names(balancer, 4) == ["a", "c", "a", "c"]


# -- differential: random traffic with failures, both sides in lockstep ----------------------


def random_servers(rng: random.Random) -> list[dict[str, Any]]:
    """An upstream block whose every group has at least two servers (see
    test_balancer_passive_health.py for the single-server cases)."""
    primaries = rng.randint(2, 5)
    backups = rng.choice([0, 0, 2, 3])
    servers: list[dict[str, Any]] = []
    for i in range(primaries + backups):
        servers.append(
            {
                "weight": rng.choice([1, 1, 2, 3, 5, 10]),
                "max_fails": rng.choice([0, 1, 1, 2, 3]),
                "fail_timeout": rng.choice([1, 2, 5, 10]),
                "down": rng.random() < 0.1,
                "backup": i >= primaries,
            }
        )
    return servers


@pytest.mark.parametrize("seed", range(60))
def test_random_traffic_matches_nginx(seed: int) -> None:
    rng = random.Random(seed)
    servers = random_servers(rng)
    twins = Twins(servers)
    failure_rate = {name: rng.choice([0.0, 0.05, 0.3, 0.9]) for name in twins.peers}
    history: list[tuple[str | None, str | None]] = []
    for request in range(300):
        twins.clock.advance(rng.choice([0, 0, 0, 1, 2, 4]))
        tried, rrp = twins.start()
        while True:
            ours, theirs = twins.pick(tried, rrp)
            history.append((ours, theirs))
            assert ours == theirs, f"request {request}: {history[-10:]} servers={servers}"
            if ours is None:
                break
            failed = rng.random() < failure_rate[ours]
            twins.finish(ours, rrp, failed)
            assert twins.state() == twins.ngx_state(), f"request {request}, servers={servers}"
            if not failed:
                break
    assert any(name for name, _ in history)


def test_sequence_survives_a_clock_that_starts_at_zero() -> None:
    # nginx's peers start with checked = 0; a monotonic clock can be small (a fresh boot).
    twins = Twins([{"weight": 3}, {"weight": 1}], now=0)
    for _ in range(20):
        tried, rrp = twins.start()
        ours, theirs = twins.pick(tried, rrp)
        assert ours == theirs
        assert ours is not None
        twins.finish(ours, rrp, failed=False)
    assert twins.state() == twins.ngx_state()
