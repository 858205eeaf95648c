"""sentinel.py: INFO's Sentinel section (recorded from redis-sentinel 7.0) and the per-master
SENTINEL replies, with 1.45's rules for what is okay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.exceptions import ResponseError
from support import metrics

from adapter import sentinel
from adapter.info import parse_info
from podkit.exposition import Exposition

DATA = Path(__file__).parent / "data"


def test_info_section() -> None:
    out = Exposition("redis")
    sections = parse_info((DATA / "info_sentinel_7.0.txt").read_text())
    assert sentinel.is_sentinel(sections)
    sentinel.add_info(out, sections)
    parsed = metrics.parse(out.render().decode())
    assert metrics.value(parsed, "redis_sentinel_masters") == 1
    assert metrics.value(parsed, "redis_sentinel_tilt") == 0
    assert "redis_sentinel_tilt_since_seconds" not in parsed  # 1.45 does not map it
    labels = {"master_name": "mymaster", "master_address": "127.0.0.1:17101"}
    assert metrics.value(parsed, "redis_sentinel_master_status", master_status="ok", **labels) == 1
    assert metrics.value(parsed, "redis_sentinel_master_slaves", **labels) == 1
    assert metrics.value(parsed, "redis_sentinel_master_sentinels", **labels) == 1


def test_a_master_not_ok_is_0_and_a_bad_line_is_skipped() -> None:
    out = Exposition("redis")
    sections = {
        "sentinel": {
            "master0": "name=a,status=sdown,address=10.0.0.1:6379,slaves=2,sentinels=3",
            "master1": "name=b,status=ok,address=10.0.0.2:6379,slaves=x,sentinels=3",
        }
    }
    sentinel.add_info(out, sections)
    parsed = metrics.parse(out.render().decode())
    assert metrics.value(parsed, "redis_sentinel_master_status", master_status="sdown") == 0
    assert len(parsed["redis_sentinel_master_status"].samples) == 1


def entry(**fields: str) -> list[bytes]:
    return [x.encode() for k, v in fields.items() for x in (k.replace("_", "-"), v)]


def test_per_master_quorum_peers_and_replicas() -> None:
    masters = [entry(name="a", ip="10.0.0.1", port="6379"), entry(name="b", ip="h", port="1")]
    replies: list[Any] = [
        b"OK 3 usable Sentinels. Quorum and failover authorization can be reached",
        [entry(name="s1", flags="sentinel"), entry(name="s2", flags="s_down,sentinel")],
        [entry(flags="slave"), entry(flags="slave,o_down"), entry(ip="no-flags")],
        ResponseError("NOQUORUM 1 usable Sentinels. Not enough available Sentinels"),
        [],
        [],
    ]
    asked: list[Sequence[tuple[str, ...]]] = []

    async def round_trip(commands: Sequence[tuple[str, ...]]) -> list[Any]:
        asked.append(commands)
        return replies

    out = Exposition("redis")
    asyncio.run(sentinel.add_masters(out, round_trip, masters))
    assert len(asked) == 1 and asked[0][0] == ("SENTINEL", "CKQUORUM", "a")
    parsed = metrics.parse(out.render().decode())
    a = {"master_name": "a", "master_address": "10.0.0.1:6379"}
    assert metrics.value(parsed, "redis_sentinel_master_ok_sentinels", **a) == 2  # itself + s1
    assert metrics.value(parsed, "redis_sentinel_master_ok_slaves", **a) == 1
    assert metrics.value(parsed, "redis_sentinel_master_ok_sentinels", master_name="b") == 1
    assert metrics.value(parsed, "redis_sentinel_master_ckquorum_status", master_name="a") == 1
    ((_, lbl, ok),) = [
        s
        for s in parsed["redis_sentinel_master_ckquorum_status"].samples
        if s[1]["master_name"] == "b"
    ]
    assert ok == 0 and lbl["message"].startswith("NOQUORUM 1 usable")


def test_refused_masters_export_nothing() -> None:
    async def round_trip(commands: Sequence[tuple[str, ...]]) -> list[Any]:
        raise AssertionError("nothing to ask")

    out = Exposition("redis")
    asyncio.run(sentinel.add_masters(out, round_trip, ResponseError("NOPERM")))
    asyncio.run(sentinel.add_masters(out, round_trip, [entry(name="no-address")]))
    assert out.render() == b"\n"
