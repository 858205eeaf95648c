"""The PROXY protocol in front of the sidecar, from real senders: curl's --haproxy-protocol
(v1) and HAProxy's `send-proxy-v2`, each followed by TLS. The client addresses are other
loopback addresses (127.0.0.0/8 is all local on Linux), so the address the header carries
differs from the balancer's own."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import metrics
from support.haproxy import haproxy_in_front
from support.processes import wait_for
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Pki,
    Sidecar,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    read_reply,
    start_echo_fixture,
    start_sidecar_fixture,
)
from support.tools import require_binary

LISTED = "127.0.0.1/32,127.0.0.2/32"  # HAProxy connects from .1, curl from .2


@pytest.fixture(name="haproxy")
def haproxy_fixture(tmp_path: Path, sidecar_pp: Sidecar) -> Iterator[int]:
    with haproxy_in_front(tmp_path / "haproxy", sidecar_pp.port) as port:
        yield port


@pytest.fixture(name="sidecar_pp")
def sidecar_pp_fixture(start_sidecar: StartSidecar) -> Sidecar:
    return start_sidecar("--proxy-protocol-from", LISTED)


def echoed_xff(body: bytes) -> list[str]:
    seen = json.loads(body)
    return [value for name, value in seen["headers"] if name.lower() == "x-forwarded-for"]


def curl(
    sidecar: Sidecar, pki: Pki, tmp_path: Path, interface: str, *args: str
) -> subprocess.CompletedProcess[str]:
    ca = tmp_path / "ca.pem"
    pki.ca.cert_pem.write_to_path(str(ca))
    return subprocess.run(
        [
            require_binary("curl"),
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            str(ca),
            "--interface",
            interface,
            *args,
            f"https://127.0.0.1:{sidecar.port}/?format=json",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_curl_haproxy_protocol_v1_then_tls(sidecar_pp: Sidecar, pki: Pki, tmp_path: Path) -> None:
    done = curl(sidecar_pp, pki, tmp_path, "127.0.0.2", "--haproxy-protocol")
    assert done.returncode == 0, done.stderr + sidecar_pp.log()[-2000:]
    assert echoed_xff(done.stdout.encode()) == ["127.0.0.2"]


def test_haproxy_send_proxy_v2_then_tls_gives_the_client_address(
    sidecar_pp: Sidecar, pki: Pki, haproxy: int
) -> None:
    raw = socket.socket()
    raw.bind(("127.0.0.3", 0))  # the client, as HAProxy sees it
    raw.settimeout(10)
    raw.connect(("127.0.0.1", haproxy))
    with pki.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /?format=json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = read_reply(tls.makefile("rb"))
    assert reply.status == 200, sidecar_pp.log()[-2000:]
    assert echoed_xff(reply.body) == ["127.0.0.3"]  # not HAProxy's 127.0.0.1
    wait_for(lambda: "127.0.0.3 - - [" in sidecar_pp.log(), what="the access log record")


def test_a_header_from_an_unlisted_peer_is_refused(
    sidecar_pp: Sidecar, pki: Pki, tmp_path: Path
) -> None:
    done = curl(sidecar_pp, pki, tmp_path, "127.0.0.4", "--haproxy-protocol")
    assert done.returncode != 0 and not done.stdout
    families = metrics.parse(sidecar_pp.admin("/metrics")[1])
    assert metrics.value(families, "sidecar_rejected_requests_total", reason="proxy_protocol") == 1
    # the same client without a header is served as itself
    done = curl(sidecar_pp, pki, tmp_path, "127.0.0.4")
    assert done.returncode == 0, done.stderr
    assert echoed_xff(done.stdout.encode()) == ["127.0.0.4"]


def test_a_listed_peer_without_a_header_is_refused(
    sidecar_pp: Sidecar, pki: Pki, tmp_path: Path
) -> None:
    done = curl(sidecar_pp, pki, tmp_path, "127.0.0.2")
    assert done.returncode != 0 and not done.stdout
    assert "PROXY" in sidecar_pp.log()
