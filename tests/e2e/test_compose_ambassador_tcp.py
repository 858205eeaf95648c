"""The ambassador in tcp mode of docker-compose.yml, up for real: `redis-ambassador` before
two Redis replicas (`redis-a`, and `redis-b` a replica of it). `redis-cli` on the host,
one connection per command, reads through it while `redis-b` is killed mid-run: at most the
command in flight fails, none after (a killed container's address answers nothing: the
connect times out after AMBASSADOR_CONNECT_TIMEOUT and goes to redis-a); the TCP connect
checks take the dead replica out and bring it back when it is started again.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from support import images
from support.compose import Project, project_up
from support.processes import http_get, wait_for
from support.tools import require_binary

pytestmark = pytest.mark.timeout(600)

SERVICES = ("redis-a", "redis-b", "redis-ambassador")
PORTS = ["REDIS_AMBASSADOR_HOST_PORT", "REDIS_AMBASSADOR_ADMIN_HOST_PORT"]


class RedisPod(Project):
    def cli(self, *command: str) -> str:
        """One redis-cli command through the ambassador: its output, "" when it failed."""
        done = subprocess.run(
            ["redis-cli", "-p", self.env["REDIS_AMBASSADOR_HOST_PORT"], *command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    def peers(self) -> dict[str, dict[str, object]]:
        port = self.env["REDIS_AMBASSADOR_ADMIN_HOST_PORT"]
        status, text = http_get(f"http://127.0.0.1:{port}/upstreams", 5)
        assert status == 200, text
        return {str(p["server"]): p for p in json.loads(text)}


@pytest.fixture(scope="module")
def pod(demo_images: dict[str, str]) -> Iterator[RedisPod]:
    require_binary("redis-cli")
    env = images.build("ambassador", "redis")
    with project_up(RedisPod, "redis-tcp", env, PORTS, SERVICES) as pod:
        set_key = pod.compose("exec", "-T", "redis-a", "redis-cli", "SET", "key", "replicated")
        assert set_key.stdout.strip() == "OK", set_key.stderr

        def replicated() -> bool:
            done = pod.compose("exec", "-T", "redis-b", "redis-cli", "GET", "key")
            return done.stdout.strip() == "replicated"

        wait_for(replicated, timeout=60, what="the key on the replica (its first full sync)")
        yield pod


def test_reads_reach_both_replicas(pod: RedisPod) -> None:
    roles = set()
    # One connection per command, 1:1 by round robin: consecutive commands alternate.
    for _ in range(4):
        info = pod.cli("INFO", "replication")
        roles.add(next(line for line in info.splitlines() if line.startswith("role:")))
    assert [pod.cli("GET", "key") for _ in range(10)] == ["replicated"] * 10
    assert roles == {"role:master", "role:slave"}


def test_a_replica_killed_mid_run_fails_at_most_the_command_in_flight(pod: RedisPod) -> None:
    outcomes: list[tuple[float, bool]] = []
    killed_at = [0.0]

    def kill() -> None:
        while len(outcomes) < 30:
            time.sleep(0.01)
        done = pod.compose("kill", "redis-b")
        assert done.returncode == 0, done.stderr
        killed_at[0] = time.monotonic()

    killer = threading.Thread(target=kill)
    killer.start()
    for _ in range(120):
        ok = pod.cli("GET", "key") == "replicated"
        outcomes.append((time.monotonic(), ok))
    killer.join(30)
    assert killed_at[0]
    failed = [t for t, ok in outcomes if not ok]
    assert len(failed) <= 1, failed
    assert not [t for t in failed if t > killed_at[0] + 1.0]  # none after the failover
    wait_for(lambda: pod.peers()["http://redis-b:6379"]["healthy"] is False, what="checked out")
    # Started again: the connect checks bring it back, and reads reach it again.
    assert pod.compose("start", "redis-b").returncode == 0
    wait_for(
        lambda: pod.peers()["http://redis-b:6379"]["available"] is True,
        timeout=60,
        what="checked back in",
    )
