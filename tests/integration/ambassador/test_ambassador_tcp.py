"""--mode tcp in front of two Redis replicas (a primary and a `replicaof` it), driven with
`redis-cli`, one connection per command: the connections split by weight, a replica killed
mid-run costs at most the command in flight — and nginx's stream module, in the same setup
with the same servers, is run beside it as the oracle of what a balancer can do there —,
active TCP connect checks take the dead replica out and bring it back, a drained replica
keeps its open connection and gets no new one, and the metrics per peer count connections,
bytes and failures."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Ambassador,
    StartAmbassador,
    refused,
    start_ambassador_fixture,
)
from support.metrics import value
from support.nginx import nginx_running
from support.processes import free_port, wait_for
from support.tools import require_binary

VALUE = "replicated"
pytestmark = pytest.mark.timeout(180)


@dataclass
class Redis:
    port: int
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Redis:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: cli(self.port, "PING") == "PONG", what=f"redis on {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: its connections reset, its port refuses at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def cli(port: int, *command: str) -> str:
    """One `redis-cli` command (one connection); its output, or "" when it failed."""
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip() if done.returncode == 0 else ""


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Redis, Redis]]:
    """Two replicas of one data set: a primary and a replica of it, holding the key."""
    server = require_binary("redis-server")
    require_binary("redis-cli")
    started: list[Redis] = []

    def redis(name: str, *extra: str) -> Redis:
        port = free_port()
        argv = [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            *extra,
        ]
        r = Redis(port, argv, tmp_path / f"redis-{name}.log")
        started.append(r)
        return r.start()

    primary = redis("a")
    primary_port = str(primary.port)
    replica = redis("b", "--replicaof", "127.0.0.1", primary_port)
    assert cli(primary.port, "SET", "key", VALUE) == "OK"
    wait_for(lambda: cli(replica.port, "GET", "key") == VALUE, what="replication")
    yield primary, replica
    for r in started:
        r.kill()


@dataclass
class Run:
    """A run of `redis-cli GET key` commands, one after another, with a replica killed from
    another thread mid-run; the outcome and start time of each command."""

    outcomes: list[tuple[float, bool]]
    killed_at: float

    @property
    def failed(self) -> int:
        return sum(1 for _, ok in self.outcomes if not ok)

    def failed_after(self, moment: float) -> int:
        return sum(1 for t, ok in self.outcomes if not ok and t > moment)


def run_with_a_kill(port: int, victim: Redis, commands: int = 150, kill_after: int = 50) -> Run:
    outcomes: list[tuple[float, bool]] = []
    killed = threading.Event()
    killed_at = [0.0]

    def killer() -> None:
        while len(outcomes) < kill_after:
            time.sleep(0.001)
        victim.kill()
        killed_at[0] = time.monotonic()
        killed.set()

    thread = threading.Thread(target=killer)
    thread.start()
    for _ in range(commands):
        # Each outcome is stamped with when its command started: one in flight when the
        # replica died may fail, one started after it may not.
        started = time.monotonic()
        outcomes.append((started, False))
        ok = cli(port, "GET", "key") == VALUE
        outcomes[-1] = (started, ok)
    thread.join(10)
    assert killed.is_set()
    return Run(outcomes, killed_at[0])


def tcp_ambassador(
    start_ambassador: StartAmbassador, primary: Redis, replica: Redis, *flags: str
) -> Ambassador:
    return start_ambassador("--mode", "tcp", *flags, upstreams=[primary.address, replica.address])


def served_by(port: int, n: int) -> Counter[str]:
    """Which replica each of `n` connections reached (INFO's tcp_port)."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        lines = cli(port, "INFO", "server").splitlines()
        seen[next(line.split(":")[1] for line in lines if line.startswith("tcp_port"))] += 1
    return seen


def test_connections_split_by_weight_and_keep_their_replica(
    replicas: tuple[Redis, Redis], start_ambassador: StartAmbassador
) -> None:
    primary, replica = replicas
    ambassador = start_ambassador(
        "--mode", "tcp", upstreams=[f"{primary.address} weight=3", replica.address]
    )
    assert served_by(ambassador.port, 40) == {str(primary.port): 30, str(replica.port): 10}
    # The per-peer counters: every connection, and its bytes both ways.
    families = ambassador.metrics()
    for r, n in ((primary, 30), (replica, 10)):
        labels = {"address": f"http://{r.address}"}
        assert value(families, "ambassador_upstream_connections_total", **labels) == n
        assert value(families, "ambassador_upstream_sent_bytes_total", **labels) > 0
        assert value(families, "ambassador_upstream_received_bytes_total", **labels) > 0
    assert value(families, "ambassador_accepted_connections_total") == 40


def test_a_replica_killed_mid_run_fails_no_command_after_the_failover(
    replicas: tuple[Redis, Redis], start_ambassador: StartAmbassador, tmp_path: Path
) -> None:
    primary, replica = replicas
    ambassador = tcp_ambassador(start_ambassador, primary, replica, "--health-interval", "0")
    run = run_with_a_kill(ambassador.port, replica)
    # At most the command in flight when the replica died; none after (the refused connect
    # is a passive failure: the connection goes to the primary, the replica is out).
    assert run.failed <= 1, run.outcomes
    assert run.failed_after(run.killed_at + 0.001) == 0
    assert len(run.outcomes) == 150
    families = ambassador.metrics()
    dead = {"address": f"http://{replica.address}"}
    assert value(families, "ambassador_upstream_failures_total", kind="connect", **dead) >= 1
    assert value(families, "ambassador_upstream_up", **dead) == 0


def test_nginx_stream_in_the_same_setup_fails_no_more(
    replicas: tuple[Redis, Redis], tmp_path: Path
) -> None:
    """The oracle: nginx's stream module, `proxy_next_upstream on` (its default), the same
    replicas and the same run. What it manages is what we must manage (above)."""
    primary, replica = replicas
    port = free_port()
    stream = f"""
    upstream redis {{ server {primary.address}; server {replica.address}; }}
    server {{ listen 127.0.0.1:{port}; proxy_pass redis; proxy_connect_timeout 5s; }}
"""
    with nginx_running(
        tmp_path / "nginx", free_port(), "", lambda: not refused(port), stream=stream
    ):
        assert cli(port, "GET", "key") == VALUE
        run = run_with_a_kill(port, replica)
    assert run.failed <= 1, run.outcomes
    assert run.failed_after(run.killed_at + 0.001) == 0


def upstreams(ambassador: Ambassador) -> dict[str, dict[str, object]]:
    return {str(p["address"]): p for p in ambassador.upstreams()}


def test_connect_checks_take_a_dead_replica_out_and_bring_it_back(
    replicas: tuple[Redis, Redis], start_ambassador: StartAmbassador
) -> None:
    primary, replica = replicas
    ambassador = tcp_ambassador(
        start_ambassador,
        primary,
        replica,
        "--health-interval",
        "0.2s",
        "--health-fall",
        "2",
        "--health-rise",
        "2",
    )
    key = f"http://{replica.address}"
    replica.kill()
    wait_for(lambda: upstreams(ambassador)[key]["healthy"] is False, what="checked out")
    # No client connection was needed to find out: none failed over.
    assert upstreams(ambassador)[key]["failures"] == {}
    replica.start()
    wait_for(lambda: upstreams(ambassador)[key]["healthy"] is True, what="checked back in")
    assert served_by(ambassador.port, 10) == {str(primary.port): 5, str(replica.port): 5}


def patch(ambassador: Ambassador, change: dict[str, object]) -> int:
    request = urllib.request.Request(
        ambassador.service.base + "/upstreams",
        data=json.dumps(change).encode(),
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def test_a_drained_replica_keeps_its_open_connection_and_gets_no_new_one(
    replicas: tuple[Redis, Redis], start_ambassador: StartAmbassador
) -> None:
    import redis  # redis-py: one connection held open across the drain

    primary, replica = replicas
    ambassador = tcp_ambassador(start_ambassador, primary, replica)
    held: list[redis.Redis] = []

    def on_replica() -> redis.Redis | None:
        return next((c for c in held if c.info("server")["tcp_port"] == replica.port), None)

    while on_replica() is None:
        held.append(redis.Redis(port=ambassador.port, single_connection_client=True))
        assert len(held) < 10
    kept = on_replica()
    assert kept is not None
    assert patch(ambassador, {"server": f"http://{replica.address}", "drain": True}) == 200
    assert served_by(ambassador.port, 6) == {str(primary.port): 6}
    assert kept.get("key") == VALUE.encode()  # the open one still works
    assert upstreams(ambassador)[f"http://{replica.address}"]["drain"] is True
    for c in held:
        c.close()
