"""The PROXY protocol in front of the ambassador (the engine reads it on any plain listener):
curl's --haproxy-protocol (v1) and HAProxy's `send-proxy-v2`, from other loopback
addresses, so the address each header carries is not the sender's own; and its access log
in JSON, one record per request with real fields."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from support import metrics
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Ambassador,
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.haproxy import haproxy_in_front
from support.processes import wait_for
from support.tools import require_binary


def echoed_xff(body: bytes) -> list[str]:
    seen = json.loads(body)
    return [value for name, value in seen["headers"] if name.lower() == "x-forwarded-for"]


def curl(ambassador: Ambassador, interface: str, *args: str) -> subprocess.CompletedProcess[str]:
    url = f"http://127.0.0.1:{ambassador.port}/?format=json"
    return subprocess.run(
        [require_binary("curl"), "-sS", "--max-time", "10", "--interface", interface, *args, url],
        capture_output=True,
        text=True,
        timeout=20,
    )


def access_records(ambassador: Ambassador) -> list[dict[str, object]]:
    records = []
    for line in ambassador.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "access":
                records.append(record)
    return records


def test_proxy_protocol_v1_and_v2_give_the_client_address(
    start_server: StartServer, start_ambassador: StartAmbassador, tmp_path: Path
) -> None:
    server = start_server("server1")
    ambassador = start_ambassador(
        "--proxy-protocol-from",
        "127.0.0.1/32,127.0.0.2/32",
        "--log-format",
        "json",
        upstreams=[server.url],
    )
    done = curl(ambassador, "127.0.0.2", "--haproxy-protocol")
    assert done.returncode == 0, done.stderr + ambassador.log()[-2000:]
    assert echoed_xff(done.stdout.encode()) == ["127.0.0.2"]

    with haproxy_in_front(tmp_path / "haproxy", ambassador.port) as port, socket.socket() as sock:
        sock.bind(("127.0.0.9", 0))  # the client, as HAProxy sees it
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /?format=json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert echoed_xff(data.split(b"\r\n\r\n", 1)[1]) == ["127.0.0.9"]  # not HAProxy's .1

    # forged: a PROXY header from a peer not listed
    done = curl(ambassador, "127.0.0.8", "--haproxy-protocol")
    assert done.returncode != 0 and not done.stdout
    value = metrics.value(
        ambassador.metrics(), "ambassador_rejected_requests_total", reason="proxy_protocol"
    )
    assert value == 1

    # the access log, in JSON: one record each, with the carried address
    wait_for(lambda: len(access_records(ambassador)) >= 2, what="two access records")
    records = access_records(ambassador)
    assert [r["remote_addr"] for r in records] == ["127.0.0.2", "127.0.0.9"]
    for record in records:
        assert record["status"] == 200 and record["upstream_status"] == 200
        assert record["upstream_addr"] == server.url.removeprefix("http://")
        assert record["request_method"] == "GET" and record["request_uri"] == "/?format=json"
        assert isinstance(record["body_bytes_sent"], int) and record["body_bytes_sent"] > 0
        assert isinstance(record["request_id"], str) and len(record["request_id"]) == 32
