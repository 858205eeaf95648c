"""Fixtures of the sidecar's process tests: a trustme PKI, the echo server as the main
container, and a factory that starts `python -m sidecar` with extra flags.

tests/integration/sidecar/conftest.py belongs to the corpus tests, so the test_sidecar_*
modules import these instead: each fixture is named by `name=` and its function ends in
`_fixture`, so a test's `sidecar` argument does not shadow an import.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest
import trustme

from support.processes import Service, free_port

# -- certificates ----------------------------------------------------------------------------


def write_pair(leaf: trustme.LeafCert, cert_file: Path, key_file: Path) -> tuple[Path, Path]:
    """A trustme leaf as the PEM files a Kubernetes TLS Secret holds (chain, key)."""
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def der(leaf: trustme.LeafCert) -> bytes:
    """The leaf certificate as a TLS client sees it (getpeercert(binary_form=True))."""
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


@dataclass
class Pki:
    """A CA for the server side, the sidecar's default pair (localhost, 127.0.0.1), and a
    second CA for client certificates (mutual TLS)."""

    workdir: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    client_ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        self.cert_file, self.key_file = write_pair(
            self.leaf, self.workdir / "tls.crt", self.workdir / "tls.key"
        )
        self.client_ca_file = self.workdir / "client-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(self.client_ca_file))

    def client_context(self, client_cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        """What a careful client uses: verifies the sidecar against the CA, optionally shows
        its own certificate."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if client_cert is not None:
            client_cert.configure_cert(ctx)
        return ctx

    def client_hello(self) -> bytes:
        """A TLS client's first flight, made without a socket: for handshakes left unfinished."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        return outgoing.read()


@pytest.fixture(name="pki")
def pki_fixture(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


# -- processes -------------------------------------------------------------------------------


@dataclass
class Sidecar:
    """A running sidecar: `port` takes client connections, `service` is its admin side."""

    service: Service
    port: int
    tls: ssl.SSLContext | None
    redirect_port: int | None = None

    @property
    def pid(self) -> int:
        assert self.service.proc is not None
        return self.service.proc.pid

    def log(self) -> str:
        return self.service.log()

    def admin(self, path: str) -> tuple[int, str]:
        return self.service.get(path)

    def connect(
        self, server_hostname: str | None = "localhost", timeout: float = 10
    ) -> socket.socket:
        """A client connection, TLS handshake done (plain TCP with --plain)."""
        if self.tls is None:
            return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return self.connect_tls(server_hostname, timeout)

    def connect_tls(
        self, server_hostname: str | None = "localhost", timeout: float = 10
    ) -> ssl.SSLSocket:
        assert self.tls is not None, "a --plain sidecar"
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            return self.tls.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise

    def certificate(self, server_hostname: str | None) -> bytes:
        """The certificate a new handshake with this SNI name (None, or an IP: none) gets."""
        with self.connect_tls(server_hostname=server_hostname) as sock:
            cert = sock.getpeercert(binary_form=True)
        assert cert is not None
        return cert


StartSidecar = Callable[..., Sidecar]
StartEcho = Callable[..., Service]


@pytest.fixture(name="start_echo")
def start_echo_fixture(tmp_path: Path) -> Iterator[StartEcho]:
    """`python -m echoserver` on a free (or the given) loopback port; stopped at the end."""
    services: list[Service] = []

    def start(*args: str, port: int | None = None) -> Service:
        port = port or free_port()
        service = Service(
            [sys.executable, "-m", "echoserver", "--listen", f"127.0.0.1:{port}", *args],
            port,
            tmp_path / f"echoserver-{len(services)}.log",
        )
        services.append(service)
        return service.start(ready_path="/healthz")

    yield start
    for service in services:
        try:
            service.stop()
        except Exception:
            pass


@pytest.fixture(name="echo")
def echo_fixture(start_echo: StartEcho) -> Service:
    """The main container: the echo server named 'web'."""
    return start_echo("--name", "web")


@pytest.fixture(name="start_sidecar")
def start_sidecar_fixture(tmp_path: Path, pki: Pki, echo: Service) -> Iterator[StartSidecar]:
    """Start `python -m sidecar` in front of `echo` (or `upstream=`), with the pki's pair
    unless `cert=`/`key=` or `plain=True`; every one is stopped at the end.

    `env` adds environment variables; `ready` is the admin path waited for.
    """
    started: list[Sidecar] = []

    def start(
        *args: str,
        upstream: str | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        plain: bool = False,
        redirect: bool = False,
        env: dict[str, str] | None = None,
        ready: str = "/healthz",
    ) -> Sidecar:
        port, admin = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "sidecar",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            upstream or f"http://127.0.0.1:{echo.port}",
            "--admin-listen",
            f"127.0.0.1:{admin}",
        ]
        if plain:
            argv.append("--plain")
        else:
            argv += ["--cert-file", str(cert or pki.cert_file)]
            argv += ["--key-file", str(key or pki.key_file)]
        redirect_port = free_port() if redirect else None
        if redirect_port:
            argv += ["--redirect-listen", f"127.0.0.1:{redirect_port}"]
        argv += args
        service = Service(
            argv,
            admin,
            tmp_path / f"sidecar-{len(started)}.log",
            env={"PYTHONUNBUFFERED": "1", **(env or {})},
        )
        sidecar = Sidecar(service, port, None if plain else pki.client_context(), redirect_port)
        started.append(sidecar)
        service.start(ready_path=ready)
        service.check_build("sidecar")
        return sidecar

    yield start
    for sidecar in started:
        try:
            sidecar.service.stop()
        except Exception:
            pass


@pytest.fixture(name="sidecar")
def sidecar_fixture(start_sidecar: StartSidecar) -> Sidecar:
    """A sidecar with the defaults in front of the echo server."""
    return start_sidecar()


# -- raw HTTP/1.1, where the exact bytes matter ------------------------------------------------


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


def read_reply(stream: BinaryIO, *, method: str = "GET") -> Reply:
    """One response from `stream` (a socket's makefile("rb")): head, then the body as framed
    by Transfer-Encoding, Content-Length or the connection's end."""
    line = stream.readline(65536)
    if not line:
        raise EOFError("the connection closed before a response")
    _version, status, reason = ([*line.decode("latin-1").rstrip("\r\n").split(" ", 2), ""])[:3]
    headers = []
    while (raw := stream.readline(65536)) not in (b"\r\n", b"\n", b""):
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    reply = Reply(int(status), reason, headers, b"")
    code = reply.status
    if method == "HEAD" or 100 <= code < 200 or code in (204, 304):
        return reply
    if (reply.header("Transfer-Encoding") or "").lower() == "chunked":
        parts = []
        while True:
            size = int(stream.readline(1024).split(b";")[0], 16)
            if size == 0:
                while stream.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            parts.append(read_exactly(stream, size))
            stream.readline(16)
        reply.body = b"".join(parts)
    elif (length := reply.header("Content-Length")) is not None:
        reply.body = read_exactly(stream, int(length))
    else:
        reply.body = stream.read()
    return reply


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError(f"expected {n} bytes, got {len(data)}")
    return data
