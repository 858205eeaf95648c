"""The ambassador's process life: SIGTERM under load drains (the request in flight finishes,
nothing it accepted fails, exit 0), and /metrics passes promtool."""

from __future__ import annotations

import http.client
import signal
import threading
import time

from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Client,
    Load,
    Outcome,
    Reply,
    StartAmbassador,
    StartServer,
    dead_url,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.processes import wait_for

DRAIN = 5.0

# A connection the ambassador closed, or never took, before any byte of an answer: the
# kept-alive race every HTTP client retries on a new connection, and the closed port.
UNANSWERED = ("ConnectionRefusedError", "RemoteDisconnected", "ConnectionResetError")


def unanswered(outcome: Outcome) -> bool:
    return outcome.status == 0 and outcome.error.startswith(UNANSWERED)


def test_sigterm_under_load_drains_and_exits_0(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(
        "--drain-timeout", f"{DRAIN:g}s", upstreams=[f"{server1.url} weight=3", server2.url]
    )
    slow: list[Reply | BaseException] = []

    def slow_request() -> None:
        try:
            with Client(ambassador.port, timeout=10) as client:
                slow.append(client.request("GET", "/slow?delay=3"))
        except BaseException as exc:
            slow.append(exc)

    slow_thread = threading.Thread(target=slow_request, daemon=True)
    slow_thread.start()
    # Before the load starts, so the one active request counted is the slow one.
    wait_for(
        lambda: sum(p["active_requests"] for p in ambassador.upstreams()) == 1,
        5,
        "the slow request at an upstream",
    )
    with Load(ambassador.port, connections=4) as load:
        load.wait_for_more(200)
        assert slow == [], "the slow request ended before the signal; nothing was drained"
        signalled = time.monotonic()
        ambassador.proc.send_signal(signal.SIGTERM)
        # unready at once, while the slow request still holds the process up
        wait_for(lambda: ambassador.admin("/readyz")[0] == 503, DRAIN, "unready")
        code = ambassador.proc.wait(DRAIN + 5)
        exited = time.monotonic()
        wait_for(  # clients keep trying after the exit: the port refuses them
            lambda: any(o.error.startswith("ConnectionRefusedError") for o in load.since(exited)),
            5,
            "a refused connection after the exit",
        )
    outcomes = load.stop()
    slow_thread.join(10)
    log = ambassador.log()

    assert code == 0, log[-2000:]
    assert len(slow) == 1 and isinstance(slow[0], Reply), slow
    assert (slow[0].status, slow[0].body) == (200, b"slept 3s\n")

    before = [o for o in outcomes if o.started < signalled]
    after = [o for o in outcomes if o.started >= signalled]
    assert len(before) >= 200
    # Before the signal everything is answered, but for a request still unread when it came
    # (the kept-alive race: closed as idle, as nginx does). After it: answered 200, or not
    # taken at all (nothing of an answer came).
    failed_before = [o for o in before if not o.ok and not (unanswered(o) and o.ended > signalled)]
    assert failed_before == [], failed_before[:5]
    failed = [o for o in after if not o.ok and not unanswered(o)]
    assert failed == [], failed[:5]
    assert "draining" in log and "stopped" in log


def test_sigterm_when_idle_exits_0(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1 = start_server("server1")
    ambassador = start_ambassador(upstreams=[server1.url])
    with ambassador.client() as kept:  # an idle kept-alive connection must not hold it up
        assert kept.request().status == 200
        ambassador.proc.send_signal(signal.SIGTERM)
        assert ambassador.proc.wait(DRAIN) == 0
        try:
            kept.request()
        except (OSError, http.client.HTTPException):
            pass
        else:
            raise AssertionError("the kept connection still answered after the exit")


def test_promtool_finds_nothing_in_metrics(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(
        "--health-path",
        "/healthz",
        "--health-interval",
        "0.2s",
        upstreams=[f"{server1.url} weight=3", server2.url, f"{dead_url()} backup"],
    )
    with ambassador.client() as client:
        for path in ("/", "/", "/status/404", "/status/503", "/"):
            client.request("GET", path)
    server2.kill()  # a failure of some kind on the metrics' failure counter
    with ambassador.client() as client:
        for _ in range(6):
            client.request("GET", "/")

    status, text = ambassador.admin("/metrics")
    assert status == 200
    assert "ambassador_upstream_responses_total{" in text
    assert 'code="404"' in text and "ambassador_upstream_failures_total{" in text
    assert metrics.promtool_findings(text) == "", text
