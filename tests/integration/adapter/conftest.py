from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import RedisServer, Service
from support.redis_topology import Cluster, SentinelSet, start_cluster, start_sentinels
from support.tools import require_binary


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_binary("redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def load_data(server: RedisServer) -> None:
    """Keys in several databases, some expiring, and a busy command table."""
    c = server.client()
    c.execute_command("DEBUG", "POPULATE", 2000, "key", 16)
    c.execute_command("SELECT", 0)
    server.client(db=1).execute_command("DEBUG", "POPULATE", 500, "one")
    server.client(db=3).execute_command("DEBUG", "POPULATE", 300, "three")
    for i in range(50):
        server.client(db=1).expire(f"one:{i}", 3600)
    c.set("counter", "42")
    c.set("greeting", "hello")
    c.rpush("queue", *range(7))
    c.sadd("members", "a", "b", "c")
    c.hset("user:1", mapping={"name": "x", "age": "3"})
    c.zadd("ranking", {"a": 1, "b": 2})
    c.pfadd("visitors", "a", "b", "c", "d")
    c.xadd("events", {"k": "v"})
    try:
        c.execute_command("NOSUCHCOMMAND")
    except Exception:
        pass
    c.execute_command("DEBUG", "SLEEP", "0.02")  # a slowlog entry and a latency event
    assert c.dbsize() > 2000 and server.client(db=3).dbsize() == 300


@pytest.fixture
def loaded_redis(redis_server: RedisServer) -> RedisServer:
    redis_server.client().config_set("latency-monitor-threshold", 5)
    redis_server.client().config_set("slowlog-log-slower-than", 10000)
    load_data(redis_server)
    return redis_server


@pytest.fixture
def started() -> Iterator[list[Service]]:
    """Services a test starts; all stopped at the end, whatever happened."""
    services: list[Service] = []
    yield services
    for service in services:
        try:
            service.stop()
        except Exception:
            pass


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real 6-node Redis Cluster (3 masters, 3 replicas), shared by the session: starting
    one takes seconds. Tests add keys of their own; none removes what others rely on."""
    require_binary("redis-server")
    require_binary("redis-cli")
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A master, its replica, and two Sentinels watching them (quorum 2), settled."""
    require_binary("redis-server")
    watched = start_sentinels(tmp_path_factory.mktemp("sentinel"))
    yield watched
    watched.stop()
