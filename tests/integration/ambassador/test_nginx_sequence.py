"""nginx as the oracle for the ambassador's balancing: the same `server` lines, the same
backends, 1000 requests through each, the same sequence of backends, request for request.

One nginx (Debian's nginx-light) runs both the backends — three `return 200 "A"` servers that
name themselves — and the balancer, an `upstream` block of `server 127.0.0.1:port weight=W`
lines in front of them. `python -m ambassador` with the same lines as --upstream then faces the
same backends. Both start fresh, and nginx's first pick depends on the weights alone, so the
two sequences must be identical from the first request on. With a server that refuses
connections the retries and max_fails must land alike too, and under `hash $key consistent`
each key must reach the same server.
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.nginx import NginxProcess, nginx_running
from support.processes import Service, free_port

REQUESTS = 1000
BACKENDS = "ABC"

HTTP = """\
    access_log off;
    keepalive_requests 100000;
{backends}
    upstream u {{
{method}
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://u; }}
    }}"""

BACKEND = '    server {{ listen 127.0.0.1:{port}; return 200 "{name}"; }}'


@dataclass
class Nginx:
    port: int  # the balancer
    backends: dict[str, int]  # name → port
    dead: int  # a port nothing listens on
    process: NginxProcess | None = None

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def connect_failures(self) -> int:
        return self.log().count("connect() failed")


def weighted(weights: list[int]) -> list[str]:
    """`server` lines for backends A, B, C… of these weights."""
    return [f"{{{name}}} weight={w}" for name, w in zip(BACKENDS, weights, strict=False)]


def addresses(nginx: Nginx, lines: list[str]) -> list[str]:
    """The lines with {A}, {B}, {C} (live backends) and {DEAD} (a port nobody listens on)
    made addresses; nginx's `server` takes them as they are, --upstream with http://."""
    ports = {**nginx.backends, "DEAD": nginx.dead}
    return [line.format(**{k: f"127.0.0.1:{p}" for k, p in ports.items()}) for line in lines]


@contextmanager
def running_nginx(workdir: Path, lines: list[str], method: str = "") -> Iterator[Nginx]:
    balancer = Nginx(free_port(), {name: free_port() for name in BACKENDS}, free_port())
    servers = [f"        server {line};" for line in addresses(balancer, lines)]
    http = HTTP.format(
        port=balancer.port,
        backends="\n".join(BACKEND.format(port=p, name=n) for n, p in balancer.backends.items()),
        servers="\n".join(servers),
        method=f"        {method}" if method else "",
    )

    def answers() -> bool:
        return all(get(port, "/") == (200, name) for name, port in balancer.backends.items())

    with nginx_running(
        workdir, balancer.port, http, answers, level="warn", connections=256
    ) as process:
        balancer.process = process
        yield balancer


@contextmanager
def running_ambassador(
    workdir: Path, lines: list[str], *options: str
) -> Iterator[tuple[int, Service]]:
    port, admin = free_port(), free_port()
    argv = [sys.executable, "-m", "ambassador", "--listen", f"127.0.0.1:{port}", *options]
    argv += ["--admin-listen", f"127.0.0.1:{admin}"]
    for line in lines:
        argv += ["--upstream", "http://" + line]
    service = Service(argv, admin, workdir / "ambassador.log")
    try:
        service.start(ready_path="/healthz")
        yield port, service
    finally:
        if service.proc is not None:
            service.stop()


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def record(port: int, requests: int = REQUESTS, keyed: bool = False) -> list[str]:
    """The backend that answered each of `requests` sequential requests on one keep-alive
    connection (`keyed`: each with its own X-Key: user-N)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen: list[str] = []
    try:
        for i in range(requests):
            conn.request("GET", f"/{i}", headers={"X-Key": f"user-{i}"} if keyed else {})
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, f"request {i}: {response.status} {body!r}"
            seen.append(body)
    finally:
        conn.close()
    return seen


def smooth_wrr(weights: list[int], picks: int) -> list[str]:
    """The textbook reading of ngx_http_upstream_get_peer, to tell which side moved when the
    two disagree."""
    current = [0] * len(weights)
    out = []
    for _ in range(picks):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= sum(weights)
        out.append(BACKENDS[best])
    return out


def divergence(ours: list[str], theirs: list[str]) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            lo = max(0, i - 10)
            return (
                f"first difference at request {i}: ambassador {a!r}, nginx {b!r}\n"
                f"  ambassador[{lo}:{i + 10}] = {''.join(ours[lo : i + 10])}\n"
                f"  nginx     [{lo}:{i + 10}] = {''.join(theirs[lo : i + 10])}"
            )
    return "identical"


def upstreams(ambassador: Service) -> dict[str, dict[str, Any]]:
    """The ambassador's /upstreams, by address."""
    status, body = ambassador.get("/upstreams")
    assert status == 200, body
    return {peer["address"]: peer for peer in json.loads(body)}


def through_both(
    tmp_path: Path, lines: list[str]
) -> tuple[Nginx, list[str], list[str], dict[str, dict[str, Any]]]:
    """nginx's sequence and the ambassador's for the same `server` lines, and what the
    ambassador's /upstreams says at the end."""
    with running_nginx(tmp_path / "nginx", lines) as nginx:
        theirs = record(nginx.port)
        with running_ambassador(tmp_path, addresses(nginx, lines)) as (port, ambassador):
            ours = record(port)
            peers = upstreams(ambassador)
    assert len(ours) == len(theirs) == REQUESTS
    return nginx, ours, theirs, peers


WEIGHT_SETS = [
    pytest.param([3, 1], id="3-1"),
    pytest.param([5, 1, 1], id="5-1-1"),
    pytest.param([2, 3, 5], id="2-3-5"),
    pytest.param([1, 1, 1], id="1-1-1"),
    pytest.param([10, 3, 1], id="10-3-1"),
]


@pytest.mark.parametrize("weights", WEIGHT_SETS)
def test_ambassador_picks_what_nginx_picks(weights: list[int], tmp_path: Path) -> None:
    nginx, ours, theirs, peers = through_both(tmp_path, weighted(weights))
    assert "[error]" not in nginx.log(), nginx.log()[-2000:]
    textbook = smooth_wrr(weights, REQUESTS)
    assert theirs == textbook, "nginx itself: " + divergence(textbook, theirs)
    assert ours == theirs, divergence(ours, theirs)
    # The ambassador's own account agrees: every response counted against the right peer.
    served = {address: peer["responses"] for address, peer in peers.items()}
    assert served == {
        f"http://127.0.0.1:{nginx.backends[name]}": {"200": ours.count(name)}
        for name in BACKENDS[: len(weights)]
    }


def test_a_dead_server_is_skipped_as_nginx_skips_it(tmp_path: Path) -> None:
    # The dead server fails twice (max_fails=2), losing weight/max_fails of its effective
    # weight each time, and is out for the rest of the run (fail_timeout=60s): the retries
    # in between land where nginx's land.
    lines = ["{A} weight=5", "{DEAD} weight=3 max_fails=2 fail_timeout=60s", "{C} weight=1"]
    nginx, ours, theirs, peers = through_both(tmp_path, lines)
    assert ours == theirs, divergence(ours, theirs)
    assert nginx.connect_failures() == 2
    assert peers[f"http://127.0.0.1:{nginx.dead}"]["failures"] == {"connect": 2}


def test_one_dead_primary_with_a_backup(tmp_path: Path) -> None:
    lines = ["{DEAD} max_fails=1 fail_timeout=60s", "{B} backup"]
    nginx, ours, theirs, peers = through_both(tmp_path, lines)
    assert ours == theirs == ["B"] * REQUESTS
    assert nginx.connect_failures() == 1
    assert peers[f"http://127.0.0.1:{nginx.dead}"]["failures"] == {"connect": 1}


def test_hash_keys_go_where_nginx_sends_them(tmp_path: Path) -> None:
    lines = weighted([1, 1, 2])
    with running_nginx(tmp_path / "nginx", lines, "hash $http_x_key consistent;") as nginx:
        theirs = record(nginx.port, keyed=True)
        options = ["--method", "hash", "--hash-key", "header:X-Key"]
        with running_ambassador(tmp_path, addresses(nginx, lines), *options) as (port, _):
            ours = record(port, keyed=True)
    assert len(set(theirs)) == 3
    assert ours == theirs, divergence(ours, theirs)
