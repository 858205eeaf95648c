"""Fixtures of the ambassador's process tests: named echo servers that can be killed and
brought back on their port, a counting upstream, `python -m ambassador` with extra flags,
keep-alive clients, and a load loop that records every request's outcome.

As in sidecar_fixtures, each fixture is named by `name=` and its function ends in
`_fixture`, so the test_ambassador_* modules import them without shadowing.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support import metrics
from support.nginx import NginxProcess, nginx_running
from support.processes import Service, free_port, wait_for

SERVED_BY = "X-Echo-Server"  # the echoserver's header: which server answered


# -- upstreams ---------------------------------------------------------------------------------


@dataclass
class EchoServer:
    """`python -m echoserver --name NAME` on a fixed loopback port, so that it can be killed
    and started again where the ambassador expects it."""

    name: str
    service: Service

    @property
    def port(self) -> int:
        return self.service.port

    @property
    def url(self) -> str:
        return self.service.base

    def start(self) -> EchoServer:
        self.service.start(ready_path="/healthz")
        return self

    def kill(self) -> None:
        """SIGKILL: no drain, connections reset, the port refuses at once."""
        self.service.stop(signal.SIGKILL)

    def stop(self) -> None:
        self.service.stop()


@dataclass
class HostService(Service):
    """A Service on another loopback address (127.0.0.2: a second "pod IP")."""

    host: str = "127.0.0.1"

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


StartServer = Callable[..., EchoServer]


@pytest.fixture(name="start_server")
def start_server_fixture(tmp_path: Path) -> Iterator[StartServer]:
    """start_server("server1") → an echo server on a free port (or `port=`, `host=`)."""
    servers: list[EchoServer] = []

    def start(name: str, port: int | None = None, host: str = "127.0.0.1") -> EchoServer:
        port = port or free_port()
        service = HostService(
            [sys.executable, "-m", "echoserver", "--listen", f"{host}:{port}", "--name", name],
            port,
            tmp_path / f"echoserver-{name}-{len(servers)}.log",
            host=host,
        )
        server = EchoServer(name, service)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        try:
            server.stop()
        except Exception:
            pass


class CountingUpstream:
    """A tiny HTTP/1.1 upstream that counts the requests arriving, by method and path.

    mode "answer": 200 with `X-Echo-Server: <name>`, connection kept.
    mode "drop": read the whole request, then close without a byte: a server that dies with
    the request in hand, so the request was sent and may have been processed.
    `health_status` is what GET /healthz answers in either mode.
    """

    def __init__(self, name: str, mode: str = "answer") -> None:
        self.name = name
        self.mode = mode
        self.health_status = 200
        self.status = 200  # what every other request is answered with
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while outer._serve_one(self.rfile, self.wfile):
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for m, p in self.seen
                if (method is None or m == method) and (path is None or p == path)
            )

    def _serve_one(self, rfile: Any, wfile: Any) -> bool:
        line = rfile.readline(65536)
        if not line.strip():
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        length = 0
        while (raw := rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length:
            rfile.read(length)
        if path == "/healthz":
            body = b"ok\n" if self.health_status < 400 else b"unhealthy\n"
            wfile.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s"
                % (self.health_status, len(body), body)
            )
            return True
        with self._lock:
            self.seen.append((method, path))
        if self.mode == "drop":
            return False  # closes the connection: the request is in hand, no answer
        wfile.write(
            b"HTTP/1.1 %d X\r\n%s: %s\r\nContent-Length: 3\r\n\r\nok\n"
            % (self.status, SERVED_BY.encode(), self.name.encode())
        )
        return True

    def __enter__(self) -> CountingUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


StartCounting = Callable[..., CountingUpstream]


@pytest.fixture(name="start_counting")
def start_counting_fixture() -> Iterator[StartCounting]:
    upstreams: list[CountingUpstream] = []

    def start(name: str, mode: str = "answer") -> CountingUpstream:
        upstream = CountingUpstream(name, mode).__enter__()
        upstreams.append(upstream)
        return upstream

    yield start
    for upstream in upstreams:
        upstream.__exit__()


def dead_url() -> str:
    """An address where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


# -- the ambassador --------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    server: str | None  # X-Echo-Server
    body: bytes


class Client:
    """One keep-alive client connection to the ambassador (http.client reconnects when the
    server closed it with `Connection: close`)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            reply = Reply(response.status, response.getheader(SERVED_BY), response.read())
        except BaseException:
            self.connection.close()
            raise
        if response.will_close:
            self.connection.close()
        return reply

    def split(self, n: int, path: str = "/") -> Counter[str | None]:
        """GET `path` n times in a row; how many each server answered (all must be 200)."""
        served: Counter[str | None] = Counter()
        for _ in range(n):
            reply = self.request("GET", path)
            assert reply.status == 200, reply
            served[reply.server] += 1
        return served

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Ambassador:
    service: Service  # its port is the admin port
    port: int

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.service.proc is not None
        return self.service.proc

    def log(self) -> str:
        return self.service.log()

    def admin(self, path: str) -> tuple[int, str]:
        return self.service.get(path, timeout=5)

    def upstreams(self) -> list[dict[str, Any]]:
        status, text = self.admin("/upstreams")
        assert status == 200, text
        peers: list[dict[str, Any]] = json.loads(text)
        return peers

    def peer(self, address: str) -> dict[str, Any]:
        (found,) = [p for p in self.upstreams() if p["address"] == address]
        return found

    def weights(self) -> dict[str, int]:
        return {p["address"]: p["weight"] for p in self.upstreams()}

    def metrics(self) -> dict[str, metrics.Family]:
        status, text = self.admin("/metrics")
        assert status == 200, text
        return metrics.parse(text)

    def client(self, timeout: float = 10.0) -> Client:
        return Client(self.port, timeout)

    def request(self, method: str = "GET", path: str = "/", body: bytes | None = None) -> Reply:
        with self.client() as client:
            return client.request(method, path, body)

    def split(self, n: int) -> Counter[str | None]:
        with self.client() as client:
            return client.split(n)


StartAmbassador = Callable[..., Ambassador]


def upstream_args(upstreams: Iterable[str]) -> list[str]:
    args: list[str] = []
    for spec in upstreams:
        args += ["--upstream", spec]
    return args


@pytest.fixture(name="start_ambassador")
def start_ambassador_fixture(tmp_path: Path) -> Iterator[StartAmbassador]:
    """start_ambassador(*flags, upstreams=[...]) → `python -m ambassador` on free ports,
    waited for on /healthz (readiness depends on the upstreams); all stopped at the end."""
    started: list[Ambassador] = []

    def start(
        *args: str,
        upstreams: Iterable[str] = (),
        env: dict[str, str] | None = None,
        ready: str = "/healthz",
        admin_host: str = "127.0.0.1",
    ) -> Ambassador:
        port, admin = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "ambassador",
            "--listen",
            f"127.0.0.1:{port}",
            "--admin-listen",
            f"{admin_host}:{admin}",
            *upstream_args(upstreams),
            *args,
        ]
        service = Service(
            argv,
            admin,
            tmp_path / f"ambassador-{len(started)}.log",
            env={"PYTHONUNBUFFERED": "1", **(env or {})},
        )
        ambassador = Ambassador(service, port)
        started.append(ambassador)
        service.start(ready_path=ready)
        service.check_build("ambassador")
        return ambassador

    yield start
    for ambassador in started:
        try:
            ambassador.service.stop()
        except Exception:
            pass


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    started: float  # time.monotonic() when the request was sent
    status: int = 0  # 0: no response
    server: str | None = None
    error: str = ""  # empty: a response came back
    ended: float = 0.0  # time.monotonic() when the answer, or the error, came

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


@dataclass
class Load:
    """GETs in a loop on `connections` keep-alive connections, each outcome recorded."""

    port: int
    connections: int = 4
    path: str = "/"
    stop_event: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self) -> None:
        client = Client(self.port, timeout=10)
        try:
            while not self.stop_event.is_set():
                outcome = Outcome(time.monotonic())
                try:
                    reply = client.request("GET", self.path)
                    outcome.status, outcome.server = reply.status, reply.server
                except (OSError, http.client.HTTPException) as exc:
                    outcome.error = repr(exc)
                    time.sleep(0.01)  # no busy loop against a closed port
                outcome.ended = time.monotonic()
                with self.lock:
                    self.outcomes.append(outcome)
        finally:
            client.close()

    def __enter__(self) -> Load:
        self.threads = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(self.connections)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)
        return self.outcomes

    def count(self) -> int:
        with self.lock:
            return len(self.outcomes)

    def wait_for_more(self, n: int, timeout: float = 30.0) -> None:
        """Until n more requests have completed (successfully or not)."""
        target = self.count() + n
        wait_for(lambda: self.count() >= target, timeout, f"{n} more requests")

    def since(self, moment: float) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.started >= moment]

    def failures(self) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if not o.ok]


def refused(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# -- nginx, the oracle for upstream semantics ----------------------------------------------------

NGINX_HTTP = """\
    access_log off;
    upstream backend {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
{directives}
        }}
    }}"""


@dataclass
class Nginx:
    process: NginxProcess
    port: int

    def log(self) -> str:
        return self.process.log()[-2000:]

    def request(self, method: str = "GET", path: str = "/", body: bytes | None = None) -> Reply:
        with Client(self.port) as client:
            return client.request(method, path, body)


StartNginx = Callable[..., Nginx]


@pytest.fixture(name="start_nginx")
def start_nginx_fixture(tmp_path: Path) -> Iterator[StartNginx]:
    """start_nginx(["127.0.0.1:8001 weight=3", ...]): Debian's nginx with that upstream block
    (nginx's own server syntax: no scheme), `directives` added to its location, and its
    defaults otherwise."""
    with ExitStack() as stack:

        def start(servers: Iterable[str], directives: str = "") -> Nginx:
            port = free_port()
            lines = "\n".join(f"        server {spec};" for spec in servers)
            http = NGINX_HTTP.format(port=port, servers=lines, directives=directives)
            workdir = tmp_path / f"nginx-{port}"
            process = stack.enter_context(
                nginx_running(workdir, port, http, lambda: not refused(port))
            )
            return Nginx(process, port)

        yield start
