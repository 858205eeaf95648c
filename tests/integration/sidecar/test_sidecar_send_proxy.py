"""--send-proxy-v2 (tcp mode): the PROXY v2 header the sidecar writes before the client's
bytes, read by HAProxy's `accept-proxy` (the address, independently) and taken apart here
by hand after the spec (proxy-protocol.txt §2.2: the PP2_TYPE_SSL TLV)."""

from __future__ import annotations

import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.client_certs import issue
from support.processes import free_port, wait_for
from support.recording_upstream import RecordingUpstream
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Pki,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    read_reply,
    start_echo_fixture,
    start_sidecar_fixture,
)
from support.tools import require_binary

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
HAPROXY = """\
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string "src=%[src]"
"""


@contextmanager
def haproxy_accepting(workdir: Path) -> Iterator[int]:
    binary = require_binary("haproxy")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "haproxy.cfg").write_text(HAPROXY.format(port=port))
    with open(workdir / "haproxy.log", "ab") as log:
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(workdir / "haproxy.cfg")], stdout=log, stderr=log
        )
    try:

        def listening() -> bool:
            assert proc.poll() is None, (workdir / "haproxy.log").read_text()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, what="haproxy")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_haproxy_reads_the_client_address(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    with haproxy_accepting(tmp_path / "haproxy") as port:
        sidecar = start_sidecar(
            "--mode", "tcp", "--send-proxy-v2", upstream=f"http://127.0.0.1:{port}"
        )
        raw = socket.socket()
        raw.bind(("127.0.0.5", 0))
        raw.settimeout(10)
        raw.connect(("127.0.0.1", sidecar.port))
        with pki.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            reply = read_reply(tls.makefile("rb"))
    assert reply.status == 200 and reply.body == b"src=127.0.0.5", sidecar.log()[-2000:]


def tlvs(data: bytes) -> dict[int, bytes]:
    found = {}
    while data:
        kind, length = data[0], struct.unpack(">H", data[1:3])[0]
        found[kind] = data[3 : 3 + length]
        data = data[3 + length :]
    return found


def test_the_header_carries_tls_version_cipher_and_client_cn(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    alice = issue(pki.client_ca, tmp_path, "alice", cn="alice")
    with RecordingUpstream() as upstream:
        sidecar = start_sidecar(
            "--mode",
            "tcp",
            "--send-proxy-v2",
            "--client-ca-file",
            str(pki.client_ca_file),
            upstream=f"http://127.0.0.1:{upstream.port}",
        )
        ctx = alice.configure(pki.client_context())
        with ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", sidecar.port), timeout=10),
            server_hostname="localhost",
        ) as tls:
            tls.sendall(b"hello")
            wait_for(lambda: upstream.received().endswith(b"hello"), what="the bytes")
            version, cipher = tls.version(), tls.cipher()
        data = upstream.received()
    assert data.startswith(SIGNATURE)
    assert data[12:14] == b"\x21\x11"  # v2 PROXY, TCP over IPv4
    length = struct.unpack(">H", data[14:16])[0]
    body, rest = data[16 : 16 + length], data[16 + length :]
    assert rest == b"hello"
    assert socket.inet_ntoa(body[:4]) == "127.0.0.1"
    assert struct.unpack(">H", body[10:12])[0] == sidecar.port  # destination port
    ssl_tlv = tlvs(body[12:])[0x20]
    assert ssl_tlv[0] == 0x07 and ssl_tlv[1:5] == b"\x00\x00\x00\x00"  # cert, verified
    subs = tlvs(ssl_tlv[5:])
    assert subs[0x21] == (version or "").encode()
    assert subs[0x22] == b"alice"
    assert cipher is not None and subs[0x23] == cipher[0].encode()


def test_the_address_a_proxy_header_in_front_carried_goes_on(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    with haproxy_accepting(tmp_path / "haproxy") as port:
        sidecar = start_sidecar(
            "--mode",
            "tcp",
            "--send-proxy-v2",
            "--proxy-protocol-from",
            "127.0.0.1/32",
            upstream=f"http://127.0.0.1:{port}",
        )
        raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
        raw.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n")  # then TLS
        with pki.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            reply = read_reply(tls.makefile("rb"))
    assert reply.status == 200 and reply.body == b"src=198.51.100.7", sidecar.log()[-2000:]
