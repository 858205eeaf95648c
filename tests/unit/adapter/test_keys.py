from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import ResponseError
from support import metrics

from adapter.keys import add_key_metrics, parse_key_specs
from podkit.exposition import Exposition
from podkit.options import OptionError


def test_parse_key_specs() -> None:
    assert parse_key_specs("db3=user:*, sessions,,db0=a") == (
        (3, "user:*"),
        (0, "sessions"),
        (0, "a"),
    )


@pytest.mark.parametrize("text", ["dbx=a", "db=a", "db1=", "3=a"])
def test_parse_key_specs_errors(text: str) -> None:
    with pytest.raises(OptionError, match="expected"):
        parse_key_specs(text)


class FakeRedis:
    """Answers the commands keys.py sends from a dict per database."""

    def __init__(self, dbs: dict[int, dict[str, Any]]) -> None:
        self.dbs = dbs
        self.db = 0
        self.sent: list[tuple[str, ...]] = []

    async def round_trip(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        return [self.answer(c) for c in commands]

    def answer(self, command: tuple[str, ...]) -> Any:
        self.sent.append(command)
        name, *args = command
        data = self.dbs.get(self.db, {})
        if name == "SELECT":
            self.db = int(args[0])
            return b"OK"
        if name == "SCAN":
            import fnmatch

            cursor = int(args[0])
            keys = sorted(k for k in data if fnmatch.fnmatchcase(k, args[2]))
            page = keys[cursor : cursor + 2]  # two keys a call: the cursor loop is exercised
            nxt = cursor + 2 if cursor + 2 < len(keys) else 0
            return [str(nxt).encode(), [k.encode() for k in page]]
        value = data.get(args[0])
        kind = {str: "string", list: "list", set: "set", dict: "hash"}.get(type(value), "none")
        if name == "TYPE":
            return kind.encode()
        if name == "PFCOUNT":
            return ResponseError("WRONGTYPE Key is not a valid HyperLogLog string value.")
        if name == "STRLEN":
            return len(value)
        if name == "GET":
            return value.encode()
        return len(value)  # LLEN, SCARD, HLEN


async def test_sizes_values_counts_and_db_restored() -> None:
    fake = FakeRedis(
        {
            0: {"counter": "42", "name": "bob", "q": [1, 2, 3]},
            2: {"s:1": {1}, "s:2": {1, 2}, "s:3": set(), "other": "x"},
        }
    )
    out = Exposition("redis")
    await add_key_metrics(
        out,
        fake.round_trip,
        check_keys=((2, "s:*"),),
        single_keys=((0, "counter"), (0, "name"), (0, "q"), (0, "gone")),
        count_keys=((2, "s:*"), (0, "*")),
        batch=100,
        home_db=5,
    )
    families = metrics.parse(out.render().decode())
    assert metrics.value(families, "redis_key_value", db="db0", key="counter") == 42
    assert metrics.value(families, "redis_key_size", db="db0", key="counter") == 2
    assert metrics.value(families, "redis_key_value_as_string", key="name", val="bob") == 1
    assert metrics.value(families, "redis_key_size", db="db0", key="q") == 3
    assert metrics.value(families, "redis_key_size", db="db0", key="gone") == 0
    assert metrics.value(families, "redis_key_size", db="db2", key="s:2") == 2
    assert metrics.value(families, "redis_keys_count", db="db2", key="s:*") == 3
    assert metrics.value(families, "redis_keys_count", db="db0", key="*") == 3
    assert fake.sent[-1] == ("SELECT", "5")  # the kept connection goes back to its database
