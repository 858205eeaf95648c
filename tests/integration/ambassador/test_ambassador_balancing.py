"""The weighted split, for real: two echo servers behind `python -m ambassador`, 10 000 GETs
on a few keep-alive connections, counted by the server that answered (X-Echo-Server) and
by the ambassador's own per-peer metrics."""

from __future__ import annotations

import threading
from collections import Counter

from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Client,
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)

REQUESTS = 10_000
CONNECTIONS = 4


def test_weights_3_to_1_hold_within_1_percent_over_10000_requests(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(
        upstreams=[f"{server1.url} weight=3 max_fails=1 fail_timeout=10s", server2.url]
    )
    served: Counter[str | None] = Counter()
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        mine: Counter[str | None] = Counter()
        codes: Counter[int] = Counter()
        try:
            with Client(ambassador.port) as client:
                for _ in range(n):
                    reply = client.request("GET", "/")
                    codes[reply.status] += 1
                    mine[reply.server] += 1
        except BaseException as exc:
            errors.append(exc)
        with lock:
            served.update(mine)
            statuses.update(codes)

    threads = [
        threading.Thread(target=client_loop, args=(REQUESTS // CONNECTIONS,))
        for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert errors == []
    assert statuses == {200: REQUESTS}
    assert set(served) == {"server1", "server2"}
    # ±1 % of the requests: 7500 ± 100 and 2500 ± 100. (Smooth weighted round robin with no
    # failure is exact: every run of 4 picks holds 3 of server1.)
    assert abs(served["server1"] - 7500) <= REQUESTS // 100, served
    assert abs(served["server2"] - 2500) <= REQUESTS // 100, served

    # The ambassador counts the same, per peer and code.
    families = ambassador.metrics()
    for server in (server1, server2):
        counted = metrics.value(
            families, "ambassador_upstream_responses_total", address=server.url, code="200"
        )
        assert counted == served[server.name]
    peers = {p["address"]: p for p in ambassador.upstreams()}
    assert peers[server1.url]["responses"] == {"200": served["server1"]}
    assert peers[server1.url]["weight"] == 3 and peers[server2.url]["weight"] == 1
    assert all(p["fails"] == 0 and p["available"] for p in peers.values())


def test_one_connection_sees_nginx_smooth_order(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    """One client in sequence sees nginx's smooth order for 3:1, not a burst of server1:
    every window of 4 requests holds exactly one server2."""
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(upstreams=[f"{server1.url} weight=3", server2.url])
    with ambassador.client() as client:
        order = [client.request().server for _ in range(40)]
    assert order[:4] == ["server1", "server1", "server2", "server1"], order
    for start in range(len(order) - 3):
        assert order[start : start + 4].count("server2") == 1, order
