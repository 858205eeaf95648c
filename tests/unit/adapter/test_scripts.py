from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import NoScriptError, ResponseError
from support import metrics

from adapter import scripts
from podkit.exposition import Exposition


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("+Inf", float("inf")),
        (" 1", None),
        ("1_000", None),
        ("", None),
        ("0x10", None),
        ("abc", None),
    ],
)
def test_go_float(text: str, want: float | None) -> None:
    assert scripts.go_float(text) == want


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param([b"a", b"1", b"b"], "even length", id="odd"),
        pytest.param([b"a", 1], "strings", id="lua-number-not-tostring"),
        pytest.param([b"a", b"many"], "not a number", id="not-a-number"),
        pytest.param(b"OK", "array", id="status"),
        pytest.param(ResponseError("ERR boom"), "boom", id="script-error"),
    ],
)
def test_bad_results(reply: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        scripts.parse_result(reply)


def test_sha_is_redis_script_cache_name() -> None:
    s = scripts.Script("return 1")
    assert s.sha == hashlib.sha1(b"return 1").hexdigest()
    assert scripts.commands([s]) == (("EVALSHA", s.sha, "0", "0"),)


async def test_values_and_noscript_reload() -> None:
    s = scripts.Script('return {"a", "1", "b", "2.5"}', "s.lua")
    sent: list[tuple[str, ...]] = []

    async def round_trip(commands: Sequence[tuple[str, ...]]) -> list[Any]:
        sent.extend(commands)
        return [
            s.sha.encode() if c[0] == "SCRIPT" else [b"a", b"1", b"b", b"2.5"] for c in commands
        ]

    out = Exposition("redis")
    failure = await scripts.add_script_values(out, round_trip, [s], [NoScriptError("x")])
    assert failure is None
    assert sent == [("SCRIPT", "LOAD", s.body), ("EVALSHA", s.sha, "0", "0")]
    families = metrics.parse(out.render().decode())
    assert metrics.value(families, "redis_script_values", key="b") == 2.5


async def test_a_failing_script_exports_no_values() -> None:
    async def round_trip(commands: Sequence[tuple[str, ...]]) -> list[Any]:
        raise AssertionError("no second round trip")

    out = Exposition("redis")
    good, bad = scripts.Script("return {}", "good.lua"), scripts.Script("x", "bad.lua")
    failure = await scripts.add_script_values(
        out, round_trip, [good, bad], [[b"a", b"1"], [b"b", b"x"]]
    )
    assert failure is not None and "bad.lua" in failure
    assert "script_values" not in out
