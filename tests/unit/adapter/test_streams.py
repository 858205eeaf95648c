from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import ResponseError
from support import metrics

from adapter.streams import add_stream_metrics, stream_id_ms
from podkit.exposition import Exposition

STREAMS = {
    (0, "events"): {
        "info": [
            b"length",
            3,
            b"radix-tree-keys",
            1,
            b"radix-tree-nodes",
            2,
            b"last-generated-id",
            b"1700000000123-4",
            b"groups",
            1,
            b"first-entry",
            [b"1-0", [b"k", b"v"]],
        ],
        "groups": [
            [
                b"name",
                b"g1",
                b"consumers",
                1,
                b"pending",
                2,
                b"last-delivered-id",
                b"1700000000001-0",
            ]
        ],
        "consumers": {"g1": [[b"name", b"c1", b"pending", 2, b"idle", 1500]]},
    },
    (1, "orders:1"): {
        "info": [
            b"length",
            1,
            b"radix-tree-keys",
            1,
            b"radix-tree-nodes",
            2,
            b"last-generated-id",
            b"5-0",
            b"groups",
            0,
        ],
        "groups": [],
        "consumers": {},
    },
}


class FakeRedis:
    def __init__(self) -> None:
        self.db = 0
        self.sent: list[tuple[str, ...]] = []
        self.round_trips = 0

    async def round_trip(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        self.round_trips += 1
        return [self.answer(c) for c in commands]

    def answer(self, command: tuple[str, ...]) -> Any:
        self.sent.append(command)
        if command[0] == "SELECT":
            self.db = int(command[1])
            return b"OK"
        if command[0] == "SCAN":
            keys = [k for db, k in STREAMS if db == self.db and fnmatch.fnmatchcase(k, command[3])]
            return [b"0", [k.encode() for k in keys]]
        stream = STREAMS.get((self.db, command[2]))
        if stream is None:
            return ResponseError("ERR no such key")
        if command[1] == "CONSUMERS":
            return stream["consumers"][command[3]]
        return stream["info" if command[1] == "STREAM" else "groups"]


async def test_streams_groups_consumers() -> None:
    fake = FakeRedis()
    out = Exposition("redis")
    await add_stream_metrics(
        out,
        fake.round_trip,
        patterns=((1, "orders:*"),),
        singles=((0, "events"), (0, "missing")),
        batch=100,
        home_db=0,
    )
    f = metrics.parse(out.render().decode())
    assert metrics.value(f, "redis_stream_length", db="db0", stream="events") == 3
    assert metrics.value(f, "redis_stream_length", db="db1", stream="orders:1") == 1
    assert metrics.value(f, "redis_stream_last_generated_id", stream="events") == 1700000000123
    assert metrics.value(f, "redis_stream_groups", stream="orders:1") == 0
    assert metrics.value(f, "redis_stream_group_messages_pending", group="g1") == 2
    assert metrics.value(f, "redis_stream_group_last_delivered_id", group="g1") == 1700000000001
    assert metrics.value(f, "redis_stream_group_consumer_idle_seconds", consumer="c1") == 1.5
    assert f["redis_stream_group_consumer_messages_pending"].label_names() == {
        "db",
        "stream",
        "group",
        "consumer",
    }
    assert not any(
        lbl.get("stream") == "missing" for fam in f.values() for _, lbl, _ in fam.samples
    )
    assert fake.sent[-1] == ("SELECT", "0")
    assert fake.round_trips == 5  # SELECT+SCAN, XINFO STREAM/GROUPS, XINFO CONSUMERS, SELECT


@pytest.mark.parametrize(("text", "want"), [(b"1-0", 1), (b"0-0", 0), (b"", 0), ("17-3", 17)])
def test_stream_id_ms(text: Any, want: float) -> None:
    assert stream_id_ms(text) == want
