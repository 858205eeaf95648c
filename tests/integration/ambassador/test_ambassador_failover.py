"""Passive health, for real: a server SIGKILLed under load, brought back, all of them down,
and which requests may go to a second server (nginx's proxy_next_upstream rules, with nginx
itself as the oracle where the two could differ)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    CountingUpstream,
    Load,
    StartAmbassador,
    StartCounting,
    StartNginx,
    StartServer,
    dead_url,
    start_ambassador_fixture,
    start_counting_fixture,
    start_nginx_fixture,
    start_server_fixture,
)
from support.processes import wait_for

BACK_WITHIN = 20.0  # fail_timeout (2 s) plus ample room on a slow machine


# -- a server killed under load ------------------------------------------------------------------


def test_server_killed_under_load_fails_no_get(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(
        upstreams=[f"{server1.url} weight=3 max_fails=1 fail_timeout=10s", server2.url]
    )
    with Load(ambassador.port, connections=4) as load:
        load.wait_for_more(400)
        server1.kill()  # returns once the process is gone
        killed = time.monotonic()  # so nothing started after this can reach server1
        load.wait_for_more(1000)
    outcomes = load.stop()

    assert load.failures() == [], load.failures()[:5]
    before = [o for o in outcomes if o.started < killed]
    after = [o for o in outcomes if o.started >= killed]
    assert {o.server for o in before} == {"server1", "server2"}
    assert len(after) >= 1000 and {o.server for o in after} == {"server2"}
    # The ambassador saw server1 fail (a refused connect, or a reset on a kept connection
    # retried on a new one) and took it out for fail_timeout.
    families = ambassador.metrics()
    failed = sum(
        value
        for name, labels, value in families["ambassador_upstream_failures_total"].samples
        if labels["address"] == server1.url
    )
    assert failed >= 1
    assert metrics.value(families, "ambassador_upstream_up", address=server1.url) == 0
    assert metrics.value(families, "ambassador_upstream_up", address=server2.url) == 1
    # nginx's effective weight: weight/max_fails off per failure, not regained while out.
    weight = metrics.value(families, "ambassador_upstream_effective_weight", address=server1.url)
    assert weight == 0
    assert ambassador.peer(server1.url)["available"] is False
    assert "upstream " + server1.url in ambassador.log()


def test_killed_server_gets_traffic_again_after_fail_timeout(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(
        upstreams=[f"{server1.url} weight=3 max_fails=1 fail_timeout=2s", server2.url]
    )
    with Load(ambassador.port, connections=3) as load:
        load.wait_for_more(200)
        server1.kill()
        load.wait_for_more(300)
        assert ambassador.peer(server1.url)["fails"] >= 1
        restarted = time.monotonic()
        server1.start()  # the same port
        wait_for(
            lambda: any(o.server == "server1" for o in load.since(restarted)),
            BACK_WITHIN,
            "a request answered by the restarted server1",
        )
        load.wait_for_more(200)
    load.stop()

    assert load.failures() == [], load.failures()[:5]
    # Back in full: its fails reset by a success, its effective weight regained, and one
    # connection in sequence sees 3:1 again (a few picks may still be regaining weight).
    wait_for(
        lambda: ambassador.peer(server1.url)["effective_weight"] == 3,
        BACK_WITHIN,
        "server1's effective weight back to 3",
    )
    peer = ambassador.peer(server1.url)
    assert peer["fails"] == 0 and peer["available"] is True
    split = ambassador.split(400)
    assert split == {"server1": 300, "server2": 100}


# -- nothing left ------------------------------------------------------------------------------


def test_all_upstreams_down_is_502_at_once_and_unready(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(upstreams=[f"{server1.url} weight=3", server2.url])
    assert ambassador.admin("/readyz")[0] == 200
    server1.kill()
    server2.kill()

    # Both tried, both refused: 502 with a body that says so. The client's 5 s timeout is
    # the "no hang" bound: refused connects fail at once.
    with ambassador.client(timeout=5) as client:
        first = client.request("GET", "/")
    assert first.status == 502
    assert first.body == b"502 Bad Gateway: the upstream could not be reached\n"
    # Both are now out for fail_timeout: not even tried.
    with ambassador.client(timeout=5) as client:
        second = client.request("GET", "/")
        post = client.request("POST", "/orders", b'{"n": 1}')
    assert second.status == 502
    assert second.body == b"502 Bad Gateway: no live upstream: every upstream is down or failing\n"
    assert post.status == 502

    status, text = ambassador.admin("/readyz")
    assert (status, text) == (503, "not ready: no upstream is available\n")
    assert ambassador.admin("/healthz")[0] == 200  # alive: restarting it would not help
    assert all(not p["available"] for p in ambassador.upstreams())


def test_single_upstream_down_is_502_not_a_hang(start_ambassador: StartAmbassador) -> None:
    ambassador = start_ambassador(upstreams=[dead_url()])
    with ambassador.client(timeout=5) as client:
        for _ in range(3):  # nginx never takes out a lone server: each request tries it
            reply = client.request("GET", "/")
            assert reply.status == 502
            assert reply.body == b"502 Bad Gateway: the upstream could not be reached\n"
    (peer,) = ambassador.upstreams()
    # Each refused connect counted, yet no failure state: a lone server is never taken out.
    assert peer["failures"] == {"connect": 3}
    assert peer["fails"] == 0 and peer["available"] is True


# -- what may be sent twice ------------------------------------------------------------------


def test_post_whose_upstream_dies_with_it_is_502_and_sent_once(
    start_counting: StartCounting, start_ambassador: StartAmbassador
) -> None:
    """The only upstream takes the POST and closes without answering: 502, and the POST
    arrived exactly once (a second attempt could charge a card twice)."""
    dropper = start_counting("dropper", mode="drop")
    ambassador = start_ambassador(upstreams=[dropper.url])
    reply = ambassador.request("POST", "/orders", b'{"n": 1}')
    assert reply.status == 502, reply
    assert reply.body.startswith(b"502 Bad Gateway")
    time.sleep(0.3)  # a second copy, if one were sent, has time to arrive
    assert dropper.requests() == 1
    assert dropper.requests("POST", "/orders") == 1


@dataclass(frozen=True)
class Case:
    method: str
    first: str  # "refused": nothing listens; "drop": takes the request, closes unanswered
    retry_non_idempotent: bool = False


def first_peer(start_counting: StartCounting, kind: str) -> tuple[str, CountingUpstream | None]:
    if kind == "refused":
        return dead_url(), None
    upstream = start_counting("first", mode="drop")
    return upstream.url, upstream


@pytest.mark.parametrize(
    ("case", "status", "first_sees", "second_sees"),
    [
        # nginx's rules: a request that never reached the first server may always go on to
        # the next; one that did goes on only if idempotent (or with non_idempotent).
        pytest.param(Case("GET", "refused"), 200, 0, 1, id="GET-refused-retried"),
        pytest.param(Case("GET", "drop"), 200, 1, 1, id="GET-sent-retried"),
        pytest.param(Case("POST", "drop"), 502, 1, 0, id="POST-sent-not-retried"),
        pytest.param(
            Case("POST", "drop", retry_non_idempotent=True),
            200,
            1,
            1,
            id="POST-sent-retried-with-non-idempotent",
        ),
        pytest.param(
            Case("POST", "refused"),
            200,
            0,
            1,
            id="POST-refused-retried",
        ),
    ],
)
def test_next_upstream_rules_match_nginx(
    case: Case,
    status: int,
    first_sees: int,
    second_sees: int,
    start_counting: StartCounting,
    start_ambassador: StartAmbassador,
    start_nginx: StartNginx,
) -> None:
    """Two servers, equal weights: the first request goes to the first (ties go to the
    first, in nginx and here). Each proxy gets fresh upstreams; both must agree."""
    body = b'{"n": 1}' if case.method == "POST" else None

    def run(proxy: str) -> tuple[int, int, int]:
        first_url, first = first_peer(start_counting, case.first)
        second = start_counting("second")
        if proxy == "nginx":
            servers = [first_url.removeprefix("http://"), second.url.removeprefix("http://")]
            directives = (
                "proxy_next_upstream error timeout non_idempotent;"
                if case.retry_non_idempotent
                else ""
            )
            reply = start_nginx(servers, directives).request(case.method, "/orders", body)
        else:
            flags = ["--next-upstream-non-idempotent"] if case.retry_non_idempotent else []
            amb = start_ambassador(*flags, upstreams=[first_url, second.url])
            reply = amb.request(case.method, "/orders", body)
        time.sleep(0.3)  # a second copy, if one were sent, has time to arrive
        return reply.status, first.requests() if first else 0, second.requests()

    expected = (status, first_sees, second_sees)
    assert run("nginx") == expected, "nginx, the oracle, changed its mind"
    assert run("ambassador") == expected
