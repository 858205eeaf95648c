"""Real Redis topologies for the adapter's integration tests, from Debian's redis-server:
a 6-node Redis Cluster (3 masters, 3 replicas, made by `redis-cli --cluster create`) and a
master with a replica watched by two Sentinels.

Each waits until the topology has settled (slots covered, replicas linked, Sentinels aware
of each other), so what the exporters report of it is deterministic.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from support.processes import RedisServer, free_port, wait_for

MASTER_NAME = "mymaster"


@dataclass
class Cluster:
    nodes: list[RedisServer]

    @property
    def seed(self) -> RedisServer:
        return self.nodes[0]

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.seed.port, socket_timeout=5)

    def masters(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.client().info("replication")["role"] == "master"]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(workdir: Path, size: int = 6) -> Cluster:
    nodes: list[RedisServer] = []
    try:
        for i in range(size):
            nodes.append(
                RedisServer(
                    workdir / f"node{i}",
                    args=(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        # a free bus port of its own: the default (port + 10000) may be taken
                        "--cluster-port",
                        str(free_port()),
                    ),
                ).start()
            )
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        wait_for(lambda: all(_settled(n, size) for n in nodes), 60, "the cluster to settle")
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return Cluster(nodes)


def _settled(node: RedisServer, size: int) -> bool:
    c = node.client()
    info = c.execute_command("CLUSTER", "INFO").decode()
    fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
    if fields.get("cluster_state") != "ok" or fields.get("cluster_known_nodes") != str(size):
        return False
    listed = c.execute_command("CLUSTER", "NODES").decode().splitlines()
    replicas = [line for line in listed if " slave " in line or ",slave " in line]
    return len(replicas) == size // 2 and all(" connected" in line for line in listed)


@dataclass
class SentinelSet:
    master: RedisServer
    replica: RedisServer
    sentinels: list[subprocess.Popen[bytes]]
    ports: list[int]
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def sentinel_client(self, i: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports[i], socket_timeout=5)

    def stop(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.stop()
        self.master.stop()


def sentinel_argv(conf: Path) -> list[str]:
    """redis-sentinel when the package is there; it is redis-server in Sentinel mode."""
    binary = shutil.which("redis-sentinel")
    return [binary, str(conf)] if binary else ["redis-server", str(conf), "--sentinel"]


def start_sentinels(workdir: Path, count: int = 2) -> SentinelSet:
    master = RedisServer(workdir / "master").start()
    replica: RedisServer | None = None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        replica = RedisServer(
            workdir / "replica", args=("--replicaof", "127.0.0.1", str(master.port))
        ).start()
        wait_for(
            lambda: (
                replica is not None
                and replica.client().info("replication")["master_link_status"] == "up"
            ),
            30,
            "the replica to link",
        )
        ports = [free_port() for _ in range(count)]
        for i, port in enumerate(ports):
            conf = workdir / f"sentinel{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} {count}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 5000\n"
            )
            with open(workdir / f"sentinel{i}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(sentinel_argv(conf), stdout=log, stderr=subprocess.STDOUT)
                )
        sentinels = SentinelSet(master, replica, procs, ports, workdir)
        wait_for(lambda: _aware(sentinels, count), 60, "the Sentinels to know each other")
    except BaseException:
        for proc in procs:
            proc.terminate()
        if replica is not None:
            replica.stop()
        master.stop()
        raise
    return sentinels


def _aware(sentinels: SentinelSet, count: int) -> bool:
    for i in range(count):
        state = sentinels.sentinel_client(i).sentinel_master(MASTER_NAME)
        if state.get("num-other-sentinels") != count - 1 or state.get("num-slaves") != 1:
            return False
        if state.get("is_sdown") or state.get("is_odown"):
            return False
    return True
