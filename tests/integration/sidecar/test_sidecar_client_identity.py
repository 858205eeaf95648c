"""The client certificate's identity as the main container receives it, recorded byte for
byte (support.recording_upstream) and read with readers written from the specifications
(support.identity_readers): every format, forged copies never passed on, and the allow-lists
refusing with 403 (http) or a closed connection (tcp), counted on /metrics."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import unquote

import pytest
from support import identity_readers as read
from support import metrics
from support.client_certs import ClientCert, issue
from support.processes import wait_for
from support.recording_upstream import RecordingUpstream
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

IDENTITY_NAMES = {"x-forwarded-client-cert", "client-cert", "client-cert-chain"}
LEGACY = "x-client-cert-subject"
FORGED = (
    b'X-Forwarded-Client-Cert: Subject="O=admins";URI=spiffe://evil\r\n'
    b"x-forwarded-client-cert: Hash=00\r\n"
    b"Client-Cert: :b2s=:\r\nCLIENT-CERT-CHAIN: :b2s=:\r\n"
    b"X-Client-Cert-Subject: O=admins\r\nx-client-cert-subject: CN=root\r\n"
)


def context(pki: Pki, cert: ClientCert | None) -> ssl.SSLContext:
    ctx = pki.client_context()
    return cert.configure(ctx) if cert is not None else ctx


def request(sidecar: Sidecar, ctx: ssl.SSLContext, extra: bytes = b"") -> int:
    """One request on a new connection; its status (0: closed without a response)."""
    try:
        raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /who HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n")
            with sock.makefile("rb") as stream:
                return read_reply(stream).status
    except (EOFError, OSError):  # ssl.SSLError and ConnectionError are OSErrors
        return 0


def received_headers(upstream: RecordingUpstream) -> list[tuple[str, str]]:
    """The one request the upstream received: its header fields, as sent."""
    data = upstream.received().decode("latin-1")
    assert data.count("\r\n\r\n") == 1, data
    lines = data.split("\r\n\r\n")[0].split("\r\n")[1:]
    return [(n.lower(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]


def identity_of(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers:
        if name in IDENTITY_NAMES or name == LEGACY:
            out.setdefault(name, []).append(value)
    return out


@pytest.fixture
def bob(pki: Pki, tmp_path: Path) -> ClientCert:
    """A client certificate whose CN reads like a second RDN, from an intermediate CA."""
    return issue(
        pki.client_ca.create_child_ca(),
        tmp_path / "bob",
        "bob",
        cn="bob,O=admins",
        o="Acme",
        uris=("spiffe://example.org/ns/a/sa/bob",),
        dns=("bob.example.org",),
    )


@pytest.mark.parametrize("fmt", ["xfcc", "rfc9440", "subject"])
def test_identity_reaches_the_upstream_unforgeable(
    start_sidecar: StartSidecar,
    pki: Pki,
    upstream: RecordingUpstream,
    bob: ClientCert,
    fmt: str,
) -> None:
    sidecar = start_sidecar(
        "--client-ca-file",
        str(pki.client_ca_file),
        "--client-cert-header",
        fmt,
        upstream=f"http://127.0.0.1:{upstream.port}",
    )
    upstream.clear()
    assert request(sidecar, context(pki, bob), FORGED) == 200
    headers = received_headers(upstream)
    assert (
        'admins"' not in str(headers) and "b2s=" not in str(headers) and "root" not in str(headers)
    )
    identity = identity_of(headers)
    root_der = ssl.PEM_cert_to_DER_cert(pki.client_ca.cert_pem.bytes().decode())
    chain = (bob.der, *bob.chain_der, root_der)
    expected = [[("CN", "bob,O=admins")], [("O", "Acme")]]
    if fmt == "xfcc":
        assert list(identity) == ["x-forwarded-client-cert"]
        (value,) = identity["x-forwarded-client-cert"]
        (element,) = read.xfcc(value)  # one element: the client's forged ones are gone
        values = dict(element)
        assert read.rfc4514(values["subject"]) == expected
        assert ssl.PEM_cert_to_DER_cert(unquote(values["cert"])) == bob.der
        assert unquote(values["chain"]).count("BEGIN CERTIFICATE") == len(chain)
        assert values["uri"] == "spiffe://example.org/ns/a/sa/bob"
        assert values["dns"] == "bob.example.org"
    elif fmt == "rfc9440":
        assert sorted(identity) == ["client-cert", "client-cert-chain"]
        assert [read.byte_sequence(v) for v in identity["client-cert"]] == [bob.der]
        (chain_value,) = identity["client-cert-chain"]
        assert read.byte_sequences(chain_value) == list(chain[1:])
    else:
        assert list(identity) == [LEGACY]
        (value,) = identity[LEGACY]
        assert read.rfc4514(value) == expected


def test_forged_identity_headers_never_reach_the_upstream(
    start_sidecar: StartSidecar, pki: Pki, upstream: RecordingUpstream
) -> None:
    target = f"http://127.0.0.1:{upstream.port}"
    plain_tls = start_sidecar(upstream=target)  # no mutual TLS at all
    optional = start_sidecar(
        "--client-ca-file", str(pki.client_ca_file), "--client-auth", "optional", upstream=target
    )
    for sidecar in (plain_tls, optional):
        upstream.clear()
        assert request(sidecar, pki.client_context(), FORGED) == 200
        assert identity_of(received_headers(upstream)) == {}


def refused_count(sidecar: Sidecar) -> float:
    families = metrics.parse(sidecar.admin("/metrics")[1])
    return metrics.value(families, "sidecar_client_cert_refused_total")


ALLOW = (
    "--allow-cn",
    "alice",
    "--allow-ou",
    "Ops",
    "--allow-dns",
    "carol.example.org",
    "--allow-uri",
    "spiffe://example.org/ns/web/sa/api",
)


def clients(pki: Pki, tmp_path: Path) -> tuple[list[ClientCert], list[ClientCert]]:
    ca = pki.client_ca
    admitted = [
        issue(ca, tmp_path, "alice", cn="alice"),
        issue(ca, tmp_path, "ops", cn="dave", ous=("Dev", "Ops")),
        issue(ca, tmp_path, "carol", cn="carol", dns=("carol.example.org",)),
        issue(ca, tmp_path, "api", uris=("spiffe://example.org/ns/web/sa/api",)),
    ]
    refused = [
        issue(ca, tmp_path, "mallory", cn="mallory", ous=("ops",)),
        issue(ca, tmp_path, "forged", cn="x,CN=alice", dns=("a.carol.example.org",)),
    ]
    return admitted, refused


def test_allow_lists_in_http_mode(
    start_sidecar: StartSidecar, pki: Pki, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    sidecar = start_sidecar(
        "--client-ca-file",
        str(pki.client_ca_file),
        *ALLOW,
        upstream=f"http://127.0.0.1:{upstream.port}",
    )
    admitted, refused = clients(pki, tmp_path)
    for cert in refused:
        upstream.clear()
        raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
        with context(pki, cert).wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            with sock.makefile("rb") as stream:
                reply = read_reply(stream)
                assert stream.read() == b""  # and closed
        assert reply.status == 403 and reply.header("Connection") == "close"
        assert upstream.received() == b""
    for cert in admitted:
        assert request(sidecar, context(pki, cert)) == 200
    assert refused_count(sidecar) == len(refused)


def test_allow_lists_in_tcp_mode(
    start_sidecar: StartSidecar, pki: Pki, upstream: RecordingUpstream, tmp_path: Path
) -> None:
    sidecar = start_sidecar(
        "--mode",
        "tcp",
        "--client-ca-file",
        str(pki.client_ca_file),
        *ALLOW,
        upstream=f"http://127.0.0.1:{upstream.port}",
    )
    admitted, refused = clients(pki, tmp_path)
    upstream.clear()
    for cert in refused:
        assert request(sidecar, context(pki, cert)) == 0  # closed, no response
    assert upstream.received() == b""
    for cert in admitted:
        assert request(sidecar, context(pki, cert)) == 200  # the bytes went through
    wait_for(lambda: upstream.requests == len(admitted), 5, "the admitted requests")
    assert refused_count(sidecar) == len(refused)


def test_refused_certificates_counted_across_workers(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    sidecar = start_sidecar(
        "--client-ca-file",
        str(pki.client_ca_file),
        "--workers",
        "2",
        "--allow-cn",
        "alice",
        ready="/readyz",
    )
    mallory = issue(pki.client_ca, tmp_path, "mallory", cn="mallory")
    alice = issue(pki.client_ca, tmp_path, "alice", cn="alice")
    wait_for(lambda: request(sidecar, context(pki, alice)) == 200, 10, "the workers serving")
    for _ in range(4):
        assert request(sidecar, context(pki, mallory)) == 403
    wait_for(lambda: refused_count(sidecar) == 4, 10, "the workers' counts added up")
