"""Peer states beyond nginx open source, on a fake clock: slow start (the share of requests
ramps up with the configured duration), drain, and Envoy-style outlier ejection (consecutive
5xx or gateway errors, ejection time growing with repeats, max ejection percentage)."""

from __future__ import annotations

import pytest
from balancer_twins import FakeClock, fail, make_balancer, succeed

from ambassador.balancer import Balancer, Peer, Tried
from ambassador.outlier import Ejector, Outlier


def shares(balancer: Balancer, n: int) -> dict[str, float]:
    counts: dict[str, int] = {}
    for _ in range(n):
        peer = balancer.pick(Tried())
        assert peer is not None
        counts[peer.name] = counts.get(peer.name, 0) + 1
        succeed(peer)
    return {name: c / n for name, c in counts.items()}


@pytest.mark.parametrize("method", ["round_robin", "least_conn"])
def test_slow_start_share_ramps_with_the_configured_duration(method: str) -> None:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"weight": 1}, {"weight": 1, "slow_start": 10.0}],
        method=method,  # type: ignore[arg-type]
        clock=clock,
    )
    peers["b"].start_slow(clock.now)
    measured = []
    for second in range(13):
        share = shares(balancer, 400).get("b", 0.0)
        f = max(second / 10, 0.01) if second < 10 else 1.0
        expected = f / (1 + f)  # b's weight is f of a's
        measured.append(share)
        assert share == pytest.approx(expected, abs=0.03), (second, measured)
        clock.advance(1)
    assert measured == sorted(measured)  # rising, never back
    assert measured[-1] == 0.5 and peers["b"].ramp_from == 0.0  # full weight, ramp over


def test_slow_start_without_a_duration_is_full_weight_at_once() -> None:
    clock = FakeClock()
    balancer, peers = make_balancer([1, 1], clock=clock)
    peers["b"].start_slow(clock.now)
    assert shares(balancer, 100) == {"a": 0.5, "b": 0.5}


def test_a_peer_back_after_fail_timeout_slow_starts() -> None:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"weight": 1}, {"weight": 1, "slow_start": 20.0, "fail_timeout": 5}],
        clock=clock,
    )
    fail(peers["b"])
    assert not peers["b"].available(clock.now)
    clock.advance(6)
    while (peer := balancer.pick(Tried())) is not peers["b"]:
        assert peer is not None
        succeed(peer)
    succeed(peers["b"])  # back: its fails reset, and its weight ramps from here
    assert peers["b"].ramp_from == clock.now and peers["b"].fails == 0
    assert shares(balancer, 200).get("b", 0) < 0.05


def test_drain_takes_no_new_request_and_keeps_readiness_with_others() -> None:
    balancer, peers = make_balancer([1, 1])
    peers["b"].drain = True
    assert set(shares(balancer, 50)) == {"a"}
    assert balancer.any_available()
    peers["a"].drain = True
    assert balancer.pick(Tried()) is None and not balancer.any_available()


def test_a_drained_single_server_is_not_picked() -> None:
    balancer, peers = make_balancer([1])
    peers["a"].drain = True
    assert balancer.pick(Tried()) is None


def ejecting(outlier: Outlier, weights: list[int]) -> tuple[Balancer, dict[str, Peer], FakeClock]:
    clock = FakeClock()
    balancer, peers = make_balancer(
        servers=[{"weight": w, "max_fails": 0} for w in weights], clock=clock
    )
    balancer.ejector = Ejector(outlier)
    return balancer, peers, clock


def test_consecutive_5xx_eject_and_the_time_grows_with_repeats() -> None:
    outlier = Outlier(consecutive_5xx=3, base_ejection_time=10, max_ejection_time=25)
    balancer, peers, clock = ejecting(outlier, [1, 1])
    a = peers["a"]
    succeed(a, 500)
    succeed(a, 503)
    succeed(a, 200)  # a success breaks the run
    succeed(a, 500)
    succeed(a, 500)
    assert a.ejected_until == 0
    succeed(a, 502)
    assert a.ejected_until == clock.now + 10 and a.ejections_total == 1
    assert not a.available(clock.now) and set(shares(balancer, 20)) == {"b"}
    clock.advance(10)
    assert a.available(clock.now)
    for _ in range(3):
        succeed(a, 500)
    assert a.ejected_until == clock.now + 20  # second time: twice as long
    clock.advance(20)
    for _ in range(3):
        succeed(a, 500)
    assert a.ejected_until == clock.now + 25  # capped at max_ejection_time
    assert a.ejections_total == 3


def test_the_multiplier_falls_back_while_a_peer_stays_in() -> None:
    outlier = Outlier(consecutive_5xx=1, base_ejection_time=10, interval=10)
    _balancer, peers, clock = ejecting(outlier, [1, 1])
    a = peers["a"]
    succeed(a, 500)
    clock.advance(10)
    succeed(a, 500)
    assert a.ejections == 2
    clock.advance(20 + 30)  # 30 s in since it came back: three intervals
    succeed(a, 500)
    assert a.ejections == 1 and a.ejected_until == clock.now + 10


def test_gateway_errors_count_502_503_504_and_failed_attempts() -> None:
    outlier = Outlier(consecutive_gateway_failure=3)
    _balancer, peers, _clock = ejecting(outlier, [1, 1])
    a = peers["a"]
    succeed(a, 502)
    fail(a, "connect")  # no response at all: a gateway error
    succeed(a, 500)  # a 5xx that is not a gateway error: the run starts again
    succeed(a, 504)
    fail(a, "http_503")  # a listed status, retried elsewhere
    assert a.ejected_until == 0
    fail(a, "timeout")
    assert a.ejected_until > 0


def test_max_ejection_percent_keeps_peers_in_but_one_may_always_go() -> None:
    outlier = Outlier(consecutive_5xx=1, max_ejection_percent=25)
    _balancer, peers, _clock = ejecting(outlier, [1, 1, 1, 1])
    succeed(peers["a"], 500)
    succeed(peers["b"], 500)  # 2 of 4 would be 50 %
    assert peers["a"].ejected_until > 0 and peers["b"].ejected_until == 0
    outlier = Outlier(consecutive_5xx=1, max_ejection_percent=0)
    _balancer, peers, _clock = ejecting(outlier, [1, 1])
    succeed(peers["a"], 500)
    assert peers["a"].ejected_until > 0  # Envoy: at least one, whatever the percentage


def test_an_ejected_peer_with_slow_start_ramps_when_it_comes_back() -> None:
    outlier = Outlier(consecutive_5xx=1, base_ejection_time=10)
    balancer, peers, clock = ejecting(outlier, [1, 1])
    peers["a"].slow_start = 10.0
    succeed(peers["a"], 500)
    assert peers["a"].ramp_from == clock.now + 10
    clock.advance(10)
    assert shares(balancer, 200).get("a", 0) < 0.05
    clock.advance(10)
    assert shares(balancer, 200) == {"a": 0.5, "b": 0.5}


def test_a_lone_server_is_never_ejected() -> None:
    balancer, peers, _clock = ejecting(Outlier(consecutive_5xx=1), [1])
    succeed(peers["a"], 500)
    assert peers["a"].ejected_until == 0 and balancer.pick(Tried()) is peers["a"]
