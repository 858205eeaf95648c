"""Active health checks: GET /healthz on every peer each 0.2 s; two failures take a peer
out before any client request meets it, two passes bring it back."""

from __future__ import annotations

from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Ambassador,
    StartAmbassador,
    StartCounting,
    StartServer,
    start_ambassador_fixture,
    start_counting_fixture,
    start_server_fixture,
)
from support.processes import wait_for

CHECKS = ("--health-path", "/healthz", "--health-interval", "0.2s")
CHECKS += ("--health-fall", "2", "--health-rise", "2")
VERDICT_WITHIN = 10.0  # two checks 0.2 s apart, with ample room on a slow machine


def healthy(ambassador: Ambassador, address: str) -> tuple[bool, float]:
    """The verdict as /upstreams and /metrics show it."""
    shown = ambassador.peer(address)["healthy"]
    gauge = metrics.value(ambassador.metrics(), "ambassador_upstream_healthy", address=address)
    return shown, gauge


def failures_of(ambassador: Ambassador, address: str) -> float:
    families = ambassador.metrics()
    return sum(
        value
        for _, labels, value in families["ambassador_upstream_failures_total"].samples
        if labels["address"] == address
    )


def test_stopped_server_is_taken_out_then_back(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(*CHECKS, upstreams=[f"{server1.url} weight=3", server2.url])
    wait_for(lambda: healthy(ambassador, server1.url) == (True, 1.0), VERDICT_WITHIN, "checks pass")
    assert ambassador.split(8) == {"server1": 6, "server2": 2}

    server1.stop()
    wait_for(
        lambda: healthy(ambassador, server1.url) == (False, 0.0),
        VERDICT_WITHIN,
        "server1 unhealthy",
    )
    assert healthy(ambassador, server2.url) == (True, 1.0)
    assert "failed 2 checks" in ambassador.log()
    # No traffic goes there: every request is server2's, and not one was even tried on
    # server1 (no passive failure counted).
    before = failures_of(ambassador, server1.url)
    assert ambassador.split(100) == {"server2": 100}
    assert failures_of(ambassador, server1.url) == before
    assert ambassador.admin("/readyz")[0] == 200  # server2 is enough

    server1.start()
    wait_for(
        lambda: healthy(ambassador, server1.url) == (True, 1.0),
        VERDICT_WITHIN,
        "server1 healthy again",
    )
    assert "passed 2 checks: back in" in ambassador.log()
    assert ambassador.split(400) == {"server1": 300, "server2": 100}


def test_answering_peer_with_failing_health_path_gets_no_traffic(
    start_counting: StartCounting, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    """The check, not a failed request, takes a peer out: this one still answers GET /,
    but its /healthz says 503."""
    sick = start_counting("sick")
    server2 = start_server("server2")
    ambassador = start_ambassador(*CHECKS, upstreams=[f"{sick.url} weight=3", server2.url])
    wait_for(lambda: healthy(ambassador, sick.url) == (True, 1.0), VERDICT_WITHIN, "checks pass")
    assert ambassador.split(4) == {"sick": 3, "server2": 1}

    sick.health_status = 503
    wait_for(
        lambda: healthy(ambassador, sick.url) == (False, 0.0), VERDICT_WITHIN, "sick unhealthy"
    )
    answered = sick.requests()
    assert ambassador.split(50) == {"server2": 50}
    assert sick.requests() == answered
    assert "status 503" in ambassador.log()

    sick.health_status = 200
    wait_for(lambda: healthy(ambassador, sick.url) == (True, 1.0), VERDICT_WITHIN, "sick healthy")
    assert ambassador.split(4) == {"sick": 3, "server2": 1}


def test_every_peer_unhealthy_makes_the_ambassador_unready(
    start_counting: StartCounting, start_ambassador: StartAmbassador
) -> None:
    one, two = start_counting("one"), start_counting("two")
    ambassador = start_ambassador(*CHECKS, upstreams=[one.url, two.url])
    wait_for(lambda: ambassador.admin("/readyz")[0] == 200, VERDICT_WITHIN, "ready")
    one.health_status = two.health_status = 500
    wait_for(lambda: ambassador.admin("/readyz")[0] == 503, VERDICT_WITHIN, "unready")
    reply = ambassador.request("GET", "/")
    assert reply.status == 502
    assert reply.body == b"502 Bad Gateway: no live upstream: every upstream is down or failing\n"
    assert one.requests() == two.requests() == 0
