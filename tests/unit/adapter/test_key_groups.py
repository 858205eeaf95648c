from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError
from support import metrics

from adapter.key_groups import GROUP_SCRIPT, Group, add_key_group_metrics, top_groups
from podkit.exposition import Exposition


def test_groups_under_the_limit_are_all_reported() -> None:
    groups, distinct = top_groups({"a": [1, 10], "b": [2, 20]}, 2)
    assert sorted(groups) == [Group("a", 1, 10), Group("b", 2, 20)] and distinct == 2


def test_overflow_keeps_the_largest_by_memory_then_fewest_keys_then_name() -> None:
    totals = {"a": [1, 50], "b": [3, 50], "c": [1, 50], "d": [9, 90], "e": [4, 5]}
    groups, distinct = top_groups(totals, 2)
    assert distinct == 5
    assert groups == [Group("d", 9, 90), Group("a", 1, 50), Group("overflow", 8, 105)]


class FakeRedis:
    """Answers SELECT and the group script: db1 takes two batches, db2's script fails."""

    def __init__(self) -> None:
        self.db = 0
        self.sent: list[tuple[str, ...]] = []

    async def round_trip(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        return [self.answer(c) for c in commands]

    def answer(self, command: tuple[str, ...]) -> Any:
        self.sent.append(command)
        if command[0] == "SELECT":
            self.db = int(command[1])
            return b"OK"
        assert command[:3] == ("EVALSHA", GROUP_SCRIPT.sha, "0")
        cursor, batch, patterns = command[3], command[4], command[5:]
        assert batch == "50" and patterns == ("^(user):", "^(session)")
        if self.db == 2:
            return ResponseError("ERR bad pattern")
        if self.db == 1 and cursor == "0":
            return [b"7", [[b"user", 2, 100], [b"unclassified", 1, 40]]]
        if self.db == 1:
            return [b"0", [[b"user", 1, 60]]]
        return [b"0", []]


async def test_batches_per_database_and_failures() -> None:
    fake = FakeRedis()
    out = Exposition("redis")
    await add_key_group_metrics(
        out,
        fake.round_trip,
        patterns=("^(user):", "^(session)"),
        max_groups=100,
        db_count=3,
        batch=50,
        home_db=0,
    )
    families = metrics.parse(out.render().decode())
    assert metrics.value(families, "redis_key_group_count", db="db1", key_group="user") == 3
    assert (
        metrics.value(families, "redis_key_group_memory_usage_bytes", db="db1", key_group="user")
        == 160
    )
    assert metrics.value(families, "redis_number_of_distinct_key_groups", db="db1") == 2
    assert metrics.value(families, "redis_number_of_distinct_key_groups", db="db0") == 0
    # A database whose script failed reports nothing, as in redis_exporter.
    assert not [
        s for s in families["redis_number_of_distinct_key_groups"].samples if s[1]["db"] == "db2"
    ]
    assert "redis_last_key_groups_scrape_duration_milliseconds" in families
    # First batches of all databases in one round trip; only db1 needed a second one.
    evals = [c for c in fake.sent if c[0] == "EVALSHA"]
    assert [c[3] for c in evals] == ["0", "0", "0", "7"]
    assert fake.sent[-1] == ("SELECT", "0")


async def test_without_groups_only_the_duration() -> None:
    fake = FakeRedis()
    out = Exposition("redis")
    await add_key_group_metrics(
        out, fake.round_trip, patterns=(), max_groups=100, db_count=16, batch=50, home_db=0
    )
    families = metrics.parse(out.render().decode())
    assert list(families) == ["redis_last_key_groups_scrape_duration_milliseconds"]
    assert fake.sent == []
