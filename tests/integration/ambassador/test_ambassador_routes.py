"""Routes end to end: upstream groups chosen by host, path prefix, header and cookie; a
reload keeps each group's peers and what they learnt (counters, a drain set at run time)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.processes import wait_for

LAYOUT = """\
upstreams: ['{s1}']
groups:
  canary:
    upstreams: ['{s2}']
  api:
    upstreams: ['{s3}', '{s1}']
routes:
  - {{header: "X-Canary: always", group: canary}}
  - {{cookie: "canary=1", group: canary}}
  - {{host: api.example.test, path_prefix: /v2/, group: api}}
{extra}"""


def served(port: int, path: str = "/", **headers: str) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200
    return response.getheader("X-Echo-Server")


def test_routes_by_host_path_header_and_cookie_and_a_reload_keeps_state(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    s1, s2, s3 = start_server("server1"), start_server("server2"), start_server("server3")
    urls = {"s1": s1.url, "s2": s2.url, "s3": s3.url}
    path = tmp_path / "ambassador.yaml"
    path.write_text(LAYOUT.format(**urls, extra=""))
    ambassador = start_ambassador("--config", str(path), "--config-check-interval", "0.1s")
    port = ambassador.port
    assert served(port) == "server1"
    assert served(port, **{"X-Canary": "always"}) == "server2"
    assert served(port, **{"X-Canary": "no"}) == "server1"
    assert served(port, Cookie="a=1; canary=1") == "server2"
    api = {served(port, "/v2/x", Host="api.example.test") for _ in range(4)}
    assert api == {"server1", "server3"}  # the api group: both of its servers
    assert served(port, "/v1/x", Host="api.example.test") == "server1"

    # The same server in two groups is two peers, each with its own state.
    peers = {(p["group"], p["address"]): p for p in ambassador.upstreams()}
    assert peers[("api", s1.url)]["responses"] == {"200": 2}
    assert peers[("default", s1.url)]["responses"] == {"200": 3}
    # A drain set at run time in one group only.
    conn = http.client.HTTPConnection("127.0.0.1", ambassador.service.port, timeout=5)
    body = json.dumps({"group": "api", "server": s3.url, "drain": True})
    conn.request("PATCH", "/upstreams", body)
    assert conn.getresponse().status == 200
    conn.close()

    # A reload adds a route; every group's peers stay as they were.
    path.write_text(LAYOUT.format(**urls, extra="  - {host: eu.example.test, group: api}\n"))
    wait_for(lambda: "configuration reloaded" in ambassador.log(), 10, "the reload")
    assert served(port, Host="eu.example.test") == "server1"  # api, with server3 drained
    peers = {(p["group"], p["address"]): p for p in ambassador.upstreams()}
    assert peers[("api", s3.url)]["drain"] is True
    assert peers[("api", s1.url)]["responses"] == {"200": 3}
    assert peers[("canary", s2.url)]["responses"] == {"200": 2}
    assert peers[("default", s1.url)]["responses"] == {"200": 3}
