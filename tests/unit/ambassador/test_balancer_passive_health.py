"""nginx's passive health: max_fails within fail_timeout, the effective weight's fall and
recovery, the `checked`/`accessed` bookkeeping, single servers and backup servers."""

from __future__ import annotations

from typing import Any

import pytest
from balancer_twins import FakeClock, Twins, fail, make_balancer, pick_names, succeed

from ambassador.balancer import Balancer, Peer, Tried


def pick(balancer: Balancer) -> Peer | None:
    return balancer.pick(Tried())


def lockstep(
    twins: Twins, requests: int, failing: frozenset[str] = frozenset(), check_state: bool = True
) -> list[str | None]:
    """Requests in a row; an attempt on a peer in `failing` fails and the request retries.
    Both sides must pick alike and (with check_state) agree on every peer's state."""
    seq: list[str | None] = []
    for _ in range(requests):
        tried, rrp = twins.start()
        while True:
            ours, theirs = twins.pick(tried, rrp)
            assert ours == theirs, f"after {seq}"
            seq.append(ours)
            if ours is None:
                break
            twins.finish(ours, rrp, failed=ours in failing)
            if check_state:
                assert twins.state() == twins.ngx_state()
            if ours not in failing:
                break
    return seq


def test_a_failure_lowers_effective_weight_by_weight_over_max_fails() -> None:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"weight": 10, "max_fails": 3}, {"weight": 1}], clock=clock
    )
    a = peers["a"]
    fail(a)
    assert (a.fails, a.effective_weight) == (1, 10 - 10 // 3)
    assert a.checked == a.accessed == clock.now
    assert a.failures == {"connect": 1}
    fail(a, "timeout")
    assert (a.fails, a.effective_weight) == (2, 4)
    assert a.available(clock.now)  # 2 < max_fails
    fail(a)
    assert (a.fails, a.effective_weight) == (3, 1)
    assert not a.available(clock.now)  # 3 >= max_fails
    fail(a)
    assert (a.fails, a.effective_weight) == (4, 0)  # 1 - 3, floored at 0
    assert balancer.pick(Tried()) is peers["b"]


@pytest.mark.parametrize(
    ("weight", "max_fails", "after_one"),
    [(1, 1, 0), (5, 1, 0), (6, 3, 4), (2, 3, 2), (7, 2, 4), (3, 0, 3)],
)
def test_weight_loss_is_integer_division(weight: int, max_fails: int, after_one: int) -> None:
    _, peers = make_balancer(servers=[{"weight": weight, "max_fails": max_fails}, {}])
    fail(peers["a"])
    assert peers["a"].effective_weight == after_one


def test_effective_weight_earns_one_point_back_per_pick() -> None:
    balancer, peers = make_balancer(servers=[{"weight": 9, "max_fails": 3}, {"weight": 1}])
    a = peers["a"]
    fail(a)  # 9 - 3 = 6
    seen = []
    for _ in range(4):
        peer = balancer.pick(Tried())
        assert peer is not None
        succeed(peer)
        seen.append(a.effective_weight)
    assert seen == [7, 8, 9, 9]


def test_max_fails_takes_a_peer_out_for_fail_timeout_then_back() -> None:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"weight": 1, "max_fails": 1, "fail_timeout": 10}, {"weight": 1}], clock=clock
    )
    a, b = peers["a"], peers["b"]
    fail(a)
    failed_at = clock.now
    assert pick_names(balancer, 3) == ["b", "b", "b"]
    clock.advance(10)  # nginx: out while now - checked <= fail_timeout
    assert not a.available(clock.now)
    assert pick(balancer) is b
    clock.advance(1)
    assert a.available(clock.now)
    # Back, with an effective weight of 0 (1 - 1/1): b still wins this pick while a earns a
    # point back; a wins the next, and that pick renews its `checked`.
    assert pick(balancer) is b
    assert (a.effective_weight, a.checked) == (1, failed_at)
    assert pick(balancer) is a
    assert a.checked == clock.now
    assert a.fails == 1
    succeed(a)  # accessed < checked: the probe passed, the failures are forgotten
    assert a.fails == 0


def test_failing_the_probe_after_fail_timeout_takes_it_out_again() -> None:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"max_fails": 1, "fail_timeout": 5}, {"weight": 1}], clock=clock
    )
    a = peers["a"]
    fail(a)
    clock.advance(6)
    assert pick_names(balancer, 1) == ["b"]
    assert pick(balancer) is a
    fail(a)
    assert a.fails == 2
    assert pick_names(balancer, 3) == ["b", "b", "b"]


def test_successes_within_fail_timeout_do_not_forgive_failures() -> None:
    # nginx counts failures since the last quiet fail_timeout, not in a sliding window: a
    # success only resets `fails` once a pick came fail_timeout after the last failure
    # (accessed < checked). nginx/nginx#599 calls this intended.
    twins = Twins([{"max_fails": 3, "fail_timeout": 10}, {}])
    a = twins.peers["a"]
    outcomes = iter([True, False, True, False, True])  # a: fail, pass, fail, pass, fail
    successes = 0
    while a.fails < 3:
        twins.clock.advance(1)
        tried, rrp = twins.start()
        while True:
            ours, theirs = twins.pick(tried, rrp)
            assert ours == theirs
            assert ours is not None
            failed = next(outcomes) if ours == "a" else False
            successes += ours == "a" and not failed
            twins.finish(ours, rrp, failed)
            assert twins.state() == twins.ngx_state()
            if not failed:
                break
    assert successes == 2
    assert not a.available(twins.clock.now)


def test_sequence_through_failures_and_recovery_matches_nginx() -> None:
    twins = Twins(
        [
            {"weight": 5, "max_fails": 2, "fail_timeout": 3},
            {"weight": 3, "max_fails": 1, "fail_timeout": 2},
            {"weight": 1},
        ]
    )
    seq = lockstep(twins, 20)
    seq += lockstep(
        twins, 10, failing=frozenset("a")
    )  # a fails twice: out, its weight halved twice
    twins.clock.advance(1)
    seq += lockstep(twins, 10, failing=frozenset("b"))
    twins.clock.advance(4)  # both back after fail_timeout; weights climb back one per pick
    seq += lockstep(twins, 40)
    assert "a" in seq[-40:] and "b" in seq[-40:]
    assert [p.effective_weight for p in twins.peers.values()] == [5, 3, 1]


# -- single servers (nginx's peers->single) ---------------------------------------------------


def test_a_single_server_is_never_taken_out() -> None:
    balancer, peers = make_balancer(servers=[{"max_fails": 1, "fail_timeout": 10}])
    for _ in range(5):
        fail(peers["a"])
        assert pick(balancer) is peers["a"]


def test_a_single_server_is_not_picked_twice_in_one_request() -> None:
    balancer, peers = make_balancer([1])
    tried = Tried()
    assert balancer.pick(tried) is peers["a"]
    assert balancer.pick(tried) is None


@pytest.mark.parametrize(
    "server", [{"down": True}, {"max_conns": 1}], ids=["down", "max_conns reached"]
)
def test_a_single_server_down_or_full_gives_none(server: dict[str, Any]) -> None:
    balancer, peers = make_balancer(servers=[server])
    peers["a"].upstream.active = 1
    assert pick(balancer) is None


def test_a_single_server_failing_leaves_the_ambassador_ready() -> None:
    balancer, peers = make_balancer(servers=[{"max_fails": 1, "fail_timeout": 10}])
    fail(peers["a"])
    assert pick(balancer) is peers["a"]
    assert balancer.any_available()
    assert peers["a"].fails == 0


def test_one_primary_with_backups_is_taken_out_by_max_fails() -> None:
    twins = Twins(
        [
            {"max_fails": 1, "fail_timeout": 30},
            {"backup": True},
        ]
    )
    # nginx 1.22, observed: after the primary's one failure, no further connect() to it.
    assert lockstep(twins, 3, frozenset("a"), check_state=False) == ["a", "b", "b", "b"]


def test_a_lone_backup_server_is_taken_out_by_max_fails() -> None:
    twins = Twins([{}, {}, {"backup": True, "max_fails": 1, "fail_timeout": 30}])
    # nginx 1.22, observed: the second request logs "no live upstreams" without a connect().
    seq = lockstep(twins, 2, frozenset("abc"), check_state=False)
    assert seq == ["a", "b", "c", None, None]


# -- backup servers ---------------------------------------------------------------------------


def backup_twins() -> Twins:
    return Twins(
        [
            {"weight": 2, "max_fails": 1, "fail_timeout": 10},
            {"weight": 1, "max_fails": 1, "fail_timeout": 10},
            {"weight": 1, "backup": True},
            {"weight": 3, "backup": True},
        ]
    )


def test_backups_are_idle_while_a_primary_is_up() -> None:
    twins = backup_twins()
    seq = lockstep(twins, 30)
    assert set(seq) == {"a", "b"}
    seq = lockstep(twins, 10, failing=frozenset("a"))  # a out; b carries everything
    assert set(seq) == {"a", "b"}
    assert seq.count("a") == 1


def test_backups_serve_once_every_primary_is_out() -> None:
    twins = backup_twins()
    seq = lockstep(twins, 1, failing=frozenset("ab"))
    assert seq == ["a", "b", "d"]  # within one request: primaries, then the backups' WRR
    seq = lockstep(twins, 8)
    assert (seq.count("c"), seq.count("d")) == (2, 6)  # weights 1 and 3
    twins.clock.advance(11)
    assert set(lockstep(twins, 6)) == {"a", "b"}  # primaries back: backups idle again


def test_every_server_out_gives_none() -> None:
    twins = backup_twins()
    assert lockstep(twins, 1, failing=frozenset("abcd")) == ["a", "b", "d", "c", None]


def test_down_primaries_send_everything_to_the_backups() -> None:
    twins = Twins([{"down": True}, {"down": True}, {"backup": True}, {"backup": True}])
    assert lockstep(twins, 4) == ["c", "d", "c", "d"]
