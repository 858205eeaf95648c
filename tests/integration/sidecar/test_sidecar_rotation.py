"""Certificate rotation the way Kubernetes does it: the kubelet writes a Secret's new
files into a new directory and swaps a `..data` symlink; the sidecar, checking every 0.2 s,
serves the new pair to new handshakes while HTTPS load runs, without one failed request.
A broken new pair (a key that is no key, a key of another certificate) is refused, logged,
and the pair in use stays."""

from __future__ import annotations

import functools
import http.client
import os
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    start_echo_fixture,
    start_sidecar_fixture,
    write_pair,
)


def publish(secret: Path, version: str, leaf: trustme.LeafCert, key: bytes | None = None) -> None:
    """Update `secret` as the kubelet updates a mounted Secret: the files go into a new
    directory, then one rename swaps the `..data` symlink to it. tls.crt and tls.key are
    symlinks through `..data`, so both change at the same instant."""
    data = secret / f"..{version}"
    write_pair(leaf, data / "tls.crt", data / "tls.key")
    if key is not None:
        (data / "tls.key").write_bytes(key)
    os.symlink(data.name, secret / "..data_tmp")
    os.replace(secret / "..data_tmp", secret / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (secret / name).is_symlink():
            os.symlink(f"..data/{name}", secret / name)


@dataclass
class Load:
    """HTTPS requests from several threads until stopped: some open a connection per
    request (and note the certificate each handshake presented), some keep one."""

    sidecar: Sidecar
    stop: threading.Event = field(default_factory=threading.Event)
    handshakes: list[tuple[float, bytes]] = field(default_factory=list)
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self, server_hostname: str) -> None:
        while not self.stop.is_set():
            try:
                with self.sidecar.connect_tls(server_hostname=server_hostname) as sock:
                    cert = sock.getpeercert(binary_form=True)
                    assert cert is not None
                    seen = time.monotonic()
                    sock.sendall(b"GET /fresh HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    status = read_reply(sock.makefile("rb")).status
                self.note(status, (seen, cert))
            except Exception as exc:
                self.note(0, None, f"fresh {server_hostname}: {exc!r}")

    def kept(self) -> None:
        conn = http.client.HTTPSConnection(
            "localhost", self.sidecar.port, context=self.sidecar.tls, timeout=10
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

    def note(self, status: int, handshake: tuple[float, bytes] | None, error: str = "") -> None:
        with self.lock:
            self.requests += 1
            if handshake is not None:
                self.handshakes.append(handshake)
            if status != 200:
                self.failures.append(error or f"status {status}")

    def threads(self) -> Iterator[threading.Thread]:
        for target, args in (
            (self.fresh, ("localhost",)),
            (self.fresh, ("localhost",)),
            (self.fresh, ("127.0.0.1",)),
            (self.kept, ()),
            (self.kept, ()),
        ):
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            yield thread


def serves(sidecar: Sidecar, server_hostname: str, leaf: trustme.LeafCert) -> bool:
    return sidecar.certificate(server_hostname) == der(leaf)


def cert_metrics(sidecar: Sidecar) -> dict[str, float]:
    families = metrics.parse(sidecar.admin("/metrics")[1])
    return {
        name: metrics.value(families, name)
        for name in (
            "sidecar_cert_not_after_timestamp_seconds",
            "sidecar_cert_reloads_total",
            "sidecar_cert_reload_failures_total",
        )
    }


def test_certificate_rotation_under_load(
    start_sidecar: StartSidecar, pki: Pki, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    publish(secret, "v1", pki.leaf)
    sidecar = start_sidecar(
        "--cert-check-interval",
        "0.2s",
        cert=secret / "tls.crt",
        key=secret / "tls.key",
    )
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    renewed = pki.ca.issue_cert("localhost", "127.0.0.1", not_after=not_after)
    assert sidecar.certificate("localhost") == der(pki.leaf)

    load = Load(sidecar)
    threads = list(load.threads())
    began = time.monotonic()
    try:
        wait_for(lambda: load.requests >= 20, timeout=10, what="load under way")
        publish(secret, "v2", renewed)
        for name in ("localhost", "127.0.0.1"):  # with SNI, and without (an IP address)
            wait_for(
                functools.partial(serves, sidecar, name, renewed),
                timeout=10,
                what=f"the renewed certificate served to {name}",
            )
        switched = time.monotonic()
        time.sleep(max(0.0, 5.0 - (switched - began)))  # load on both sides of the switch
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(15)
    assert load.failures == [], load.failures[:5]
    assert load.requests > 50
    late = [cert for seen, cert in load.handshakes if seen > switched]
    assert late and all(cert == der(renewed) for cert in late)
    assert "certificate reloaded" in sidecar.log()
    assert cert_metrics(sidecar) == {
        "sidecar_cert_not_after_timestamp_seconds": not_after.timestamp(),
        "sidecar_cert_reloads_total": 1,
        "sidecar_cert_reload_failures_total": 0,
    }

    # a broken pair: a key that is not a key, then a key of another certificate
    publish(secret, "v3", pki.ca.issue_cert("localhost"), key=b"garbage\n")
    wait_for(lambda: "new certificate rejected" in sidecar.log(), timeout=10, what="the rejection")
    other_key = pki.ca.issue_cert("localhost").private_key_pem.bytes()
    publish(secret, "v4", pki.ca.issue_cert("localhost"), key=other_key)
    wait_for(
        lambda: sidecar.log().count("new certificate rejected") == 2,
        timeout=10,
        what="the second rejection",
    )
    for name in ("localhost", "127.0.0.1"):
        assert sidecar.certificate(name) == der(renewed)
    assert cert_metrics(sidecar) == {
        "sidecar_cert_not_after_timestamp_seconds": not_after.timestamp(),
        "sidecar_cert_reloads_total": 1,
        "sidecar_cert_reload_failures_total": 2,
    }
    assert sidecar.service.proc is not None and sidecar.service.proc.poll() is None
