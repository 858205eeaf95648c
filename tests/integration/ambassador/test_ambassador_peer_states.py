"""Peer states for real: a slow-started peer's share of requests ramping over the configured
duration, drain under load (0 requests lost, those in flight finish), the admin port's write
fence, and outlier ejection with its growing ejection time."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import pytest
from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Ambassador,
    Load,
    StartAmbassador,
    StartCounting,
    StartServer,
    start_ambassador_fixture,
    start_counting_fixture,
    start_server_fixture,
)
from support.processes import wait_for


def patch(host: str, port: int, body: dict[str, object], token: str = "") -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("PATCH", "/upstreams", json.dumps(body).encode(), headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def admin_port(ambassador: Ambassador) -> int:
    return ambassador.service.port


def write_config(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def test_slow_start_share_ramps_over_the_configured_duration(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    path = tmp_path / "ambassador.yaml"
    write_config(path, f"upstreams: ['{server1.url}']\n")
    ambassador = start_ambassador("--config", str(path), "--config-check-interval", "0.1s")
    duration = 4.0
    with Load(ambassador.port, connections=4) as load:
        load.wait_for_more(100)
        write_config(
            path, f"upstreams: ['{server1.url}', '{server2.url} slow_start={duration}s']\n"
        )
        wait_for(lambda: any(o.server == "server2" for o in load.outcomes), 10, "server2 added")
        added = min(o.started for o in load.outcomes if o.server == "server2")
        wait_for(lambda: time.monotonic() > added + duration + 1.5, 15, "the ramp and after")
    outcomes = load.stop()
    assert load.failures() == []
    # server2's share of requests in successive windows of the ramp, against its weight's
    # part then (f of server1's: f / (1 + f)); after the ramp, its full half.
    window = duration / 4
    measured, expected = [], []
    for i in range(5):
        start = added + i * window
        inside = [o for o in outcomes if start <= o.started < start + window]
        assert len(inside) >= 20, f"too few requests in window {i}: {len(inside)}"
        measured.append(sum(o.server == "server2" for o in inside) / len(inside))
        f = min((i + 0.5) * window / duration, 1.0)
        expected.append(f / (1 + f) if i < 4 else 0.5)
    for got, want in zip(measured, expected, strict=True):
        assert abs(got - want) < 0.12, (measured, expected)
    assert measured[0] < measured[2] < measured[4], measured
    families = ambassador.metrics()
    share = metrics.value(families, "ambassador_upstream_slow_start_share", address=server2.url)
    assert share == 1.0


def test_drain_under_load_loses_nothing_and_in_flight_requests_finish(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = start_ambassador(upstreams=[server1.url, server2.url])
    slow: list[tuple[int, str | None]] = []

    def slow_request() -> None:
        reply = ambassador.request("GET", "/slow?delay=1.5")
        slow.append((reply.status, reply.server))

    with Load(ambassador.port, connections=4) as load:
        load.wait_for_more(200)
        threads = [threading.Thread(target=slow_request) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the slow ones are in flight on both servers
        status, text = patch(
            "127.0.0.1", admin_port(ambassador), {"server": server2.url, "drain": True}
        )
        assert status == 200, text
        drained = time.monotonic()
        assert json.loads(text)[0]["drain"] is True
        load.wait_for_more(400)
        for thread in threads:
            thread.join(10)
    load.stop()
    assert load.failures() == []  # 0 requests lost
    after = load.since(drained + 0.1)
    assert len(after) >= 300 and {o.server for o in after} == {"server1"}
    # Every slow one answered, those on server2 too, though it was drained meanwhile.
    assert [status for status, _ in slow] == [200] * 4
    assert any(server == "server2" for _, server in slow), slow
    families = ambassador.metrics()
    assert metrics.value(families, "ambassador_upstream_draining", address=server2.url) == 1
    assert metrics.value(families, "ambassador_upstream_up", address=server2.url) == 0
    assert ambassador.admin("/readyz")[0] == 200
    # Back in: undrained, it takes requests again.
    patch("127.0.0.1", admin_port(ambassador), {"server": server2.url, "drain": False})
    assert set(ambassador.split(10)) == {"server1", "server2"}


def host_address() -> str | None:
    """This machine's address on its way out (no packet is sent), when it is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_admin_writes_need_loopback_or_the_token(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    outside = host_address()
    if outside is None:
        pytest.skip("no address but loopback on this machine")
    server1, server2 = start_server("server1"), start_server("server2")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    ambassador = start_ambassador(
        "--admin-token-file",
        str(token_file),
        upstreams=[server1.url, server2.url],
        admin_host="0.0.0.0",
    )
    admin = ambassador.service.port
    change = {"server": server2.url, "drain": True}
    assert patch(outside, admin, change)[0] == 403
    assert patch(outside, admin, change, token="wrong")[0] == 403
    assert ambassador.peer(server2.url)["drain"] is False
    families = ambassador.metrics()
    assert metrics.value(families, "ambassador_admin_writes_refused_total") == 2
    assert f"admin write refused: PATCH /upstreams from {outside}" in ambassador.log()
    # Reading stays open from anywhere.
    conn = http.client.HTTPConnection(outside, admin, timeout=5)
    conn.request("GET", "/upstreams")
    assert conn.getresponse().status == 200
    conn.close()
    assert patch(outside, admin, change, token="s3cret-token")[0] == 200
    assert ambassador.peer(server2.url)["drain"] is True
    assert patch("127.0.0.1", admin, {**change, "drain": False})[0] == 200  # loopback: no token
    assert ambassador.peer(server2.url)["drain"] is False


def test_outlier_ejection_and_its_growing_time(
    tmp_path: Path, start_counting: StartCounting, start_ambassador: StartAmbassador
) -> None:
    bad, good = start_counting("bad"), start_counting("good")
    bad.status = 503
    path = tmp_path / "ambassador.yaml"
    write_config(
        path,
        f"upstreams: ['{bad.url} max_fails=0', '{good.url} max_fails=0']\n"
        "outlier: {consecutive_5xx: 3, base_ejection_time: 2s, max_ejection_percent: 50}\n",
    )
    ambassador = start_ambassador("--config", str(path))
    with ambassador.client() as client:
        statuses = [client.request("GET", "/").status for _ in range(20)]
    assert statuses.count(503) == 3 and bad.requests() == 3  # then ejected
    peer = ambassador.peer(bad.url)
    assert peer["ejected"] is True and 0 < peer["ejected_for"] <= 2.0
    assert "ejected for 2s: 3 5xx in a row" in ambassador.log()
    families = ambassador.metrics()
    assert metrics.value(families, "ambassador_upstream_ejected", address=bad.url) == 1
    wait_for(lambda: not ambassador.peer(bad.url)["ejected"], 10, "the first ejection's end")
    with ambassador.client() as client:
        for _ in range(20):
            client.request("GET", "/")
    assert bad.requests() == 6  # back, three more 5xx, out again: now for twice as long
    second = ambassador.peer(bad.url)
    assert second["ejections"] == 2 and 2.0 < second["ejected_for"] <= 4.0
    assert "ejected for 4s: 3 5xx in a row (ejection 2)" in ambassador.log()
