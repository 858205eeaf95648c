"""The client CA bundle reloaded like the certificate and key: when its file changes (a
Secret's `..data` swap), at once on SIGHUP, and under load with the server certificate
replaced at the same instant, without one failed request. And SNI names matched as RFC 6125
says (a wildcard covers one label)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from support.client_certs import issue
from support.processes import wait_for
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Pki,
    Sidecar,
    StartSidecar,
    der,
    echo_fixture,
    pki_fixture,
    read_reply,
    start_echo_fixture,
    start_sidecar_fixture,
    write_pair,
)


def publish(secret: Path, version: str, leaf: trustme.LeafCert, *cas: trustme.CA) -> None:
    """A Secret update as the kubelet makes it: tls.crt, tls.key and ca.crt written into a
    new directory, then the `..data` symlink swapped to it in one rename."""
    data = secret / f"..{version}"
    write_pair(leaf, data / "tls.crt", data / "tls.key")
    (data / "ca.crt").write_bytes(b"".join(ca.cert_pem.bytes() for ca in cas))
    os.symlink(data.name, secret / "..data_tmp")
    os.replace(secret / "..data_tmp", secret / "..data")
    for name in ("tls.crt", "tls.key", "ca.crt"):
        if not (secret / name).is_symlink():
            os.symlink(f"..data/{name}", secret / name)


def status(sidecar: Sidecar, ctx: ssl.SSLContext) -> int:
    """One request on a new connection: its status, 0 when TLS refused the client."""
    try:
        raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            with sock.makefile("rb") as stream:
                return read_reply(stream).status
    except (ssl.SSLError, ConnectionError, EOFError):
        return 0


def start_on_secret(start_sidecar: StartSidecar, pki: Pki, secret: Path, interval: str) -> Sidecar:
    return start_sidecar(
        "--client-ca-file",
        str(secret / "ca.crt"),
        "--cert-check-interval",
        interval,
        cert=secret / "tls.crt",
        key=secret / "tls.key",
    )


def test_client_ca_change_picked_up_from_the_file(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    publish(secret, "v1", pki.leaf, pki.client_ca)
    sidecar = start_on_secret(start_sidecar, pki, secret, "0.2s")
    new_ca = trustme.CA()
    old = issue(pki.client_ca, tmp_path, "old", cn="old").configure(pki.client_context())
    new = issue(new_ca, tmp_path, "new", cn="new").configure(pki.client_context())
    assert (status(sidecar, old), status(sidecar, new)) == (200, 0)
    publish(secret, "v2", pki.leaf, pki.client_ca, new_ca)  # both trusted for a while
    wait_for(lambda: status(sidecar, new) == 200, 10, "the new client CA trusted")
    assert status(sidecar, old) == 200
    publish(secret, "v3", pki.leaf, new_ca)  # the old one withdrawn
    wait_for(lambda: status(sidecar, old) == 0, 10, "the old client CA no longer trusted")
    assert status(sidecar, new) == 200


def test_sighup_reloads_the_client_ca(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.crt"
    pki.client_ca.cert_pem.write_to_path(str(ca_file))
    sidecar = start_sidecar(
        "--client-ca-file", str(ca_file), "--cert-check-interval", "1h"
    )  # the watcher would not look again for an hour
    new_ca = trustme.CA()
    new = issue(new_ca, tmp_path, "new", cn="new").configure(pki.client_context())
    ca_file.write_bytes(pki.client_ca.cert_pem.bytes() + new_ca.cert_pem.bytes())
    time.sleep(0.5)
    assert status(sidecar, new) == 0
    os.kill(sidecar.pid, signal.SIGHUP)
    wait_for(lambda: status(sidecar, new) == 200, 10, "the CA reloaded on SIGHUP")
    assert "certificate reloaded (SIGHUP)" in sidecar.log()


@dataclass
class MutualLoad:
    """Clients with a certificate, some opening a connection per request, one keeping its
    connection, until stopped."""

    sidecar: Sidecar
    ctx: ssl.SSLContext
    stop: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    seen: set[bytes] = field(default_factory=set)  # server certificates presented
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self) -> None:
        while not self.stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", self.sidecar.port), timeout=10)
                with self.ctx.wrap_socket(raw, server_hostname="localhost") as sock:
                    cert = sock.getpeercert(binary_form=True)
                    sock.sendall(b"GET /fresh HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    with sock.makefile("rb") as stream:
                        code = read_reply(stream).status
                self.note(code, cert)
            except Exception as exc:
                self.note(0, None, f"fresh: {exc!r}")

    def kept(self) -> None:
        conn = http.client.HTTPSConnection(
            "localhost", self.sidecar.port, context=self.ctx, timeout=10
        )
        with closing(conn):
            while not self.stop.is_set():
                try:
                    conn.request("GET", "/kept")
                    response = conn.getresponse()
                    response.read()
                    self.note(response.status, None)
                except Exception as exc:
                    self.note(0, None, f"kept: {exc!r}")
                    conn.close()

    def note(self, code: int, cert: bytes | None, error: str = "") -> None:
        with self.lock:
            self.requests += 1
            if cert:
                self.seen.add(cert)
            if code != 200:
                self.failures.append(error or f"status {code}")


def test_ca_and_certificate_rotation_under_load(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    publish(secret, "v1", pki.leaf, pki.client_ca)
    sidecar = start_on_secret(start_sidecar, pki, secret, "0.2s")
    client = issue(pki.client_ca, tmp_path, "client", cn="client")
    load = MutualLoad(sidecar, client.configure(pki.client_context()))
    threads = [threading.Thread(target=load.fresh, daemon=True) for _ in range(3)]
    threads.append(threading.Thread(target=load.kept, daemon=True))
    for thread in threads:
        thread.start()
    new_ca = trustme.CA()
    renewed = pki.ca.issue_cert("localhost", "127.0.0.1")
    try:
        wait_for(lambda: load.requests >= 20, 10, "load under way")
        publish(secret, "v2", renewed, new_ca, pki.client_ca)  # new CA first in the bundle
        wait_for(lambda: der(renewed) in load.seen, 10, "the renewed certificate served")
        at_switch = load.requests
        wait_for(lambda: load.requests >= at_switch + 50, 20, "load after the switch")
        newcomer = issue(new_ca, tmp_path, "newcomer", cn="newcomer")
        assert status(sidecar, newcomer.configure(pki.client_context())) == 200
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(15)
    assert load.failures == [], load.failures[:5]
    assert load.seen == {der(pki.leaf), der(renewed)}
    assert "new certificate rejected" not in sidecar.log()


def _served(sidecar: Sidecar, server_hostname: str) -> bytes:
    """The certificate a handshake with this SNI name gets, not verified."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", sidecar.port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=server_hostname) as sock:
        cert = sock.getpeercert(binary_form=True)
    assert cert is not None
    return cert


def test_sni_wildcard_covers_one_label(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    wild = pki.ca.issue_cert("*.wild.test")
    exact = pki.ca.issue_cert("exact.wild.test")
    pairs = [
        write_pair(wild, tmp_path / "wild.crt", tmp_path / "wild.key"),
        write_pair(exact, tmp_path / "exact.crt", tmp_path / "exact.key"),
    ]
    sidecar = start_sidecar("--extra-certs", ",".join(f"{c}:{k}" for c, k in pairs))
    assert _served(sidecar, "a.wild.test") == der(wild)
    assert _served(sidecar, "A.WILD.test") == der(wild)
    assert _served(sidecar, "exact.wild.test") == der(exact)  # exact before a wildcard
    assert _served(sidecar, "a.b.wild.test") == der(pki.leaf)  # fnmatch took this one
    assert _served(sidecar, "wild.test") == der(pki.leaf)
