"""least_conn (fewest active requests per unit of weight, ties by round robin, as
ngx_http_upstream_least_conn_module.c) and consistent hashing."""

from __future__ import annotations

import random
from typing import Any

import pytest
from balancer_reference import chash_owners, smooth_wrr
from balancer_twins import Twins, fail, make_balancer, pick_names

from ambassador.balancer import Balancer, HashRing, Peer, Tried
from podkit.proxy.head import RequestHead

# -- least_conn -------------------------------------------------------------------------------


def test_fewest_active_requests_win() -> None:
    balancer, peers = make_balancer([1, 1, 1], method="least_conn")
    peers["a"].upstream.active = 3
    peers["b"].upstream.active = 1
    peers["c"].upstream.active = 2
    assert balancer.pick(Tried()) is peers["b"]


def test_active_requests_are_weighed() -> None:
    # a: 4 active / weight 4 = 1 per unit; b: 2 / 1 = 2: a has room for more
    balancer, peers = make_balancer([4, 1], method="least_conn")
    peers["a"].upstream.active = 4
    peers["b"].upstream.active = 2
    assert balancer.pick(Tried()) is peers["a"]
    peers["a"].upstream.active = 9  # 2.25 per unit
    assert balancer.pick(Tried()) is peers["b"]


@pytest.mark.parametrize("weights", [[3, 1], [5, 1, 1], [1, 1, 1], [2, 3, 5]], ids=str)
def test_ties_go_round_robin(weights: list[int]) -> None:
    # Sequential requests leave every peer at 0 active: always a tie, so nginx's least_conn is
    # its smooth weighted round robin.
    balancer, _ = make_balancer(weights, method="least_conn")
    expected = [chr(ord("a") + i) for i in smooth_wrr(weights, 500)]
    assert pick_names(balancer, 500) == expected


def test_ties_among_the_least_loaded_only() -> None:
    balancer, peers = make_balancer([1, 1, 1], method="least_conn")
    peers["b"].upstream.active = 1
    assert pick_names(balancer, 4) == ["a", "c", "a", "c"]


def test_least_conn_skips_failed_down_and_full_peers() -> None:
    balancer, peers = make_balancer(
        servers=[{"max_fails": 1}, {"down": True}, {"max_conns": 1}, {}], method="least_conn"
    )
    fail(peers["a"])
    peers["c"].upstream.active = 1
    assert pick_names(balancer, 3) == ["d", "d", "d"]


def test_least_conn_uses_backups_when_primaries_are_out() -> None:
    balancer, peers = make_balancer(
        servers=[{"max_fails": 1}, {"max_fails": 1}, {"backup": True}, {"backup": True}],
        method="least_conn",
    )
    fail(peers["a"])
    fail(peers["b"])
    peers["c"].upstream.active = 1
    assert pick_names(balancer, 2) == ["d", "d"]


@pytest.mark.parametrize("seed", range(40))
def test_least_conn_with_requests_in_flight_matches_nginx(seed: int) -> None:
    """Requests start and finish in random order; nginx's peer->conns is the engine's
    upstream.active (counted here the moment a peer is picked, as nginx counts it)."""
    rng = random.Random(seed)
    servers: list[dict[str, Any]] = [
        {"weight": rng.choice([1, 1, 2, 3, 5]), "max_fails": rng.choice([0, 1, 2])}
        for _ in range(rng.randint(2, 5))
    ]
    twins = Twins(servers, method="least_conn")
    in_flight: list[tuple[str, Any]] = []
    for step in range(400):
        if in_flight and rng.random() < 0.5:
            name, rrp = in_flight.pop(rng.randrange(len(in_flight)))
            twins.peers[name].upstream.active -= 1
            twins.finish(name, rrp, failed=rng.random() < 0.1)
        else:
            twins.clock.advance(rng.choice([0, 0, 1, 3]))
            tried, rrp = twins.start()
            ours, theirs = twins.pick(tried, rrp)
            assert ours == theirs, f"step {step}, servers={servers}"
            if ours is not None:
                twins.peers[ours].upstream.active += 1
                in_flight.append((ours, rrp))
        assert twins.state() == twins.ngx_state(), f"step {step}"


# -- consistent hash --------------------------------------------------------------------------

KEYS = [f"user-{i}".encode() for i in range(1000)]


def hashed(weights: list[int]) -> tuple[Balancer, dict[str, Peer]]:
    balancer, peers = make_balancer(weights, method="hash")
    balancer.hash_key = lambda head: head.header(b"x-key") or b""
    return balancer, peers


def owner(balancer: Balancer, key: bytes, tried: Tried | None = None) -> str:
    head = RequestHead("10.0.0.1")
    head.headers = [(b"X-Key", key)]
    peer = balancer.pick(tried or Tried(), head)
    assert peer is not None
    return peer.name


def test_the_same_key_goes_to_the_same_peer() -> None:
    balancer, _ = hashed([1, 1, 1, 1])
    first = {key: owner(balancer, key) for key in KEYS}
    again = {key: owner(balancer, key) for key in reversed(KEYS)}
    assert first == again
    assert set(first.values()) == {"a", "b", "c", "d"}


def test_a_rebuilt_ring_maps_keys_the_same() -> None:
    # A reload or a restart builds a new ring from the same addresses: nothing moves.
    one, _ = hashed([1, 1, 1, 1])
    two, _ = hashed([1, 1, 1, 1])
    assert all(owner(one, key) == owner(two, key) for key in KEYS)


def test_keys_spread_by_weight() -> None:
    balancer, _ = hashed([1, 1, 2])
    counts: dict[str, int] = {}
    for key in KEYS:
        name = owner(balancer, key)
        counts[name] = counts.get(name, 0) + 1
    assert 150 < counts["a"] < 350 and 150 < counts["b"] < 350 and 350 < counts["c"] < 650


def test_removing_a_peer_moves_only_its_keys() -> None:
    four, _ = hashed([1, 1, 1, 1])
    before = {key: owner(four, key) for key in KEYS}
    three, peers = hashed([1, 1, 1, 1])
    three.primary.remove(peers["d"])
    three.ring = HashRing(three.primary)
    after = {key: owner(three, key) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert len(moved) < 0.4 * len(KEYS)
    assert {before[key] for key in moved} == {"d"}  # only the removed peer's keys move


def test_an_unavailable_peers_keys_go_elsewhere_and_come_back() -> None:
    balancer, peers = hashed([1, 1, 1, 1])
    before = {key: owner(balancer, key) for key in KEYS}
    fail(peers["b"])
    during = {key: owner(balancer, key) for key in KEYS}
    assert "b" not in during.values()
    assert all(during[k] == before[k] for k in KEYS if before[k] != "b")
    balancer.clock.advance(11)  # type: ignore[attr-defined]
    assert {key: owner(balancer, key) for key in KEYS} == before


def test_a_retry_under_hash_takes_another_peer() -> None:
    balancer, _ = hashed([1, 1, 1])
    tried = Tried()
    first = owner(balancer, b"k", tried)
    second = owner(balancer, b"k", tried)
    assert first != second


@pytest.mark.parametrize("weights", [[1, 1, 1, 1], [1, 2, 3]], ids=str)
def test_keys_go_where_nginx_hash_consistent_sends_them(weights: list[int]) -> None:
    balancer, peers = hashed(weights)
    servers = [p.upstream.url.removeprefix("http://") for p in peers.values()]
    expected = [chr(ord("a") + i) for i in chash_owners(servers, weights, KEYS)]
    assert [owner(balancer, key) for key in KEYS] == expected
