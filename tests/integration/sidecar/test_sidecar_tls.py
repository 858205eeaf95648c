"""TLS in front of the main container: client certificates (mutual TLS) and the subject
header, many handshakes at once, and certificates chosen by SNI."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
import trustme
from support import metrics
from support.processes import wait_for
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Pki,
    Sidecar,
    StartSidecar,
    der,
    echo_fixture,
    pki_fixture,
    read_reply,
    sidecar_fixture,
    start_echo_fixture,
    start_sidecar_fixture,
    write_pair,
)

SUBJECT = "X-Client-Cert-Subject"


def echoed_headers(
    sidecar: Sidecar, context: ssl.SSLContext, extra: bytes = b""
) -> list[tuple[str, str]]:
    """The request headers as the echo server received them, for a request with `extra`."""
    raw = context.wrap_socket(
        socket.create_connection(("127.0.0.1", sidecar.port), timeout=10),
        server_hostname="localhost",
    )
    with raw as sock:
        sock.sendall(b"GET /?format=json HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200, reply
    return [(name, value) for name, value in json.loads(reply.body)["headers"]]


def subjects(headers: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in headers if name.lower() == SUBJECT.lower()]


# -- mutual TLS -------------------------------------------------------------------------------


@pytest.fixture
def alice(pki: Pki) -> trustme.LeafCert:
    return pki.client_ca.issue_cert(
        "alice.example.org",
        common_name="alice",
        organization_name="Example Org",
        organization_unit_name="Dev",
    )


FORGED = b"X-Client-Cert-Subject: CN=admin\r\nx-client-cert-subject: CN=root\r\n"


def test_client_certificate_required_and_its_subject_passed_on(
    start_sidecar: StartSidecar, pki: Pki, alice: trustme.LeafCert
) -> None:
    sidecar = start_sidecar(
        "--client-ca-file", str(pki.client_ca_file), "--client-cert-header", "subject"
    )
    headers = echoed_headers(sidecar, pki.client_context(alice))
    assert subjects(headers) == ["CN=alice,OU=Dev,O=Example Org"]
    # what a client claims itself is dropped, whatever its spelling
    headers = echoed_headers(sidecar, pki.client_context(alice), FORGED)
    assert subjects(headers) == ["CN=alice,OU=Dev,O=Example Org"]


def refused(sidecar: Sidecar, context: ssl.SSLContext) -> str:
    """How the sidecar refused a client; fails if an HTTP response came back instead."""
    raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
    try:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            # TLS 1.3: the client's handshake ends before the server has checked its
            # certificate, so the refusal arrives on the first read
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = sock.recv(4096)
    except (ssl.SSLError, ConnectionError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        raw.close()
    assert not data.startswith(b"HTTP/"), data
    return "closed"


def test_client_without_certificate_is_refused(
    start_sidecar: StartSidecar, pki: Pki, alice: trustme.LeafCert
) -> None:
    sidecar = start_sidecar("--client-ca-file", str(pki.client_ca_file))
    refused(sidecar, pki.client_context())
    # a certificate from a CA the sidecar does not trust for clients is no better
    stranger = trustme.CA().issue_cert("mallory.example.org", common_name="mallory")
    refused(sidecar, pki.client_context(stranger))
    assert echoed_headers(sidecar, pki.client_context(alice))  # the right one still works
    families = metrics.parse(sidecar.admin("/metrics")[1])
    for reason in ("client_cert_missing", "client_cert_invalid"):
        failures = metrics.value(families, "sidecar_tls_handshake_failures_total", reason=reason)
        assert failures == 1, reason


def test_client_certificate_optional(
    start_sidecar: StartSidecar, pki: Pki, alice: trustme.LeafCert
) -> None:
    sidecar = start_sidecar(
        "--client-ca-file",
        str(pki.client_ca_file),
        "--client-auth",
        "optional",
        "--client-cert-header",
        "subject",
    )
    assert subjects(echoed_headers(sidecar, pki.client_context())) == []
    assert subjects(echoed_headers(sidecar, pki.client_context(), FORGED)) == []
    headers = echoed_headers(sidecar, pki.client_context(alice), FORGED)
    assert subjects(headers) == ["CN=alice,OU=Dev,O=Example Org"]


def test_forged_subject_is_dropped_without_mutual_tls(sidecar: Sidecar, pki: Pki) -> None:
    assert subjects(echoed_headers(sidecar, pki.client_context(), FORGED)) == []


def test_concurrent_handshakes_all_complete(sidecar: Sidecar) -> None:
    """Many clients connecting at once: every handshake completes, none waits for a
    timeout (a ClientHello read before the TLS layer is in place would be lost)."""
    failures: list[str] = []

    def client() -> None:
        for _ in range(25):
            try:
                with sidecar.connect(timeout=5) as sock:
                    sock.sendall(b"GET /hs HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    assert read_reply(sock.makefile("rb")).status == 200
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [], f"{len(failures)} of 200 failed: {sorted(set(failures))[:3]}"


# -- SNI --------------------------------------------------------------------------------------


def test_sni_chooses_the_extra_certificate(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    other = pki.ca.issue_cert("other.test")
    wild = pki.ca.issue_cert("*.wild.test")
    pairs = [
        write_pair(other, tmp_path / "other.crt", tmp_path / "other.key"),
        write_pair(wild, tmp_path / "wild.crt", tmp_path / "wild.key"),
    ]
    sidecar = start_sidecar("--extra-certs", ",".join(f"{c}:{k}" for c, k in pairs))
    assert sidecar.certificate("other.test") == der(other)
    assert sidecar.certificate("OTHER.test") == der(other)
    assert sidecar.certificate("a.wild.test") == der(wild)
    assert sidecar.certificate("localhost") == der(pki.leaf)
    assert sidecar.certificate("127.0.0.1") == der(pki.leaf)  # an IP: no SNI sent
    # an unknown name gets the default certificate (which the client then refuses)
    with pytest.raises(ssl.SSLCertVerificationError):
        sidecar.certificate("unknown.test")
    with sidecar.connect(server_hostname="other.test") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200 and reply.body.startswith(b"server: web\n")


# -- plain HTTP on the TLS port ----------------------------------------------------------------


def test_plain_http_on_the_tls_port_gets_nginx_400(sidecar: Sidecar, pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as sock:
        sock.sendall(b"GET /secret HTTP/1.1\r\nHost: localhost\r\n\r\n")
        stream = sock.makefile("rb")
        reply = read_reply(stream)
        assert stream.read() == b""  # and closed
    assert reply.status == 400
    assert reply.body == b"The plain HTTP request was sent to HTTPS port\n"
    assert reply.header("Connection") == "close"
    assert reply.header("X-Echo-Server") is None  # the sidecar's answer: nothing went upstream
    families = metrics.parse(sidecar.admin("/metrics")[1])
    reason = "plain_http"
    assert metrics.value(families, "sidecar_tls_handshake_failures_total", reason=reason) == 1
    assert echoed_headers(sidecar, pki.client_context())  # TLS on the port goes on


# -- handshakes left unfinished ---------------------------------------------------------------


def test_stalled_and_abandoned_handshakes_are_counted(
    start_sidecar: StartSidecar, pki: Pki
) -> None:
    sidecar = start_sidecar("--header-timeout", "1s")
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as stalled:
        stalled.sendall(pki.client_hello())
        with contextlib.suppress(ConnectionResetError):
            while stalled.recv(65536):  # the server's flight, then the drop
                pass
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as abandoned:
        abandoned.sendall(pki.client_hello())
        assert abandoned.recv(1)  # the handshake is under way; the client goes
    socket.create_connection(("127.0.0.1", sidecar.port), timeout=10).close()  # a TCP check

    def counted(reason: str) -> float:
        families = metrics.parse(sidecar.admin("/metrics")[1])
        return metrics.value(families, "sidecar_tls_handshake_failures_total", reason=reason)

    wait_for(lambda: counted("client_closed") == 1, 5, "the abandoned handshake counted")
    assert counted("timeout") == 1
    assert echoed_headers(sidecar, pki.client_context())  # and a good handshake is not
    assert (counted("timeout"), counted("client_closed")) == (1, 1)
