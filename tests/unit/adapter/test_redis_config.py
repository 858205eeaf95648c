from __future__ import annotations

from redis.exceptions import ResponseError
from support import metrics

from adapter import redis_config
from podkit.exposition import Exposition

ALL = [
    b"maxmemory",
    b"0",
    b"maxclients",
    b"10000",
    b"io-threads",
    b"1",
    b"databases",
    b"16",
    b"requirepass",
    b"hunter2",
    b"masterauth",
    b"",
    b"save",
    b"3600 1 300 100",
    b"hz",
    b"10",
    b"appendonly",
    b"no",
    b"lfu-decay-time",
    b" 1",
]


def collect(replies: list[object], *, everything: bool, redact: bool = True):  # type: ignore[no-untyped-def]
    out = Exposition("redis")
    dbs = redis_config.add_config(out, replies, everything=everything, redact=redact)
    return dbs, metrics.parse(out.render().decode())


def test_named_keys_only_by_default() -> None:
    assert redis_config.commands("CONFIG", False) == (
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "GET", "maxclients"),
        ("CONFIG", "GET", "io-threads"),
        ("CONFIG", "GET", "databases"),
    )
    replies = [[b"maxmemory", b"0"], [b"maxclients", b"10000"], [], ResponseError("ERR")]
    dbs, families = collect(replies, everything=False)
    assert dbs == 0  # unknown: the scraper falls back to 16
    assert set(families) == {"redis_config_maxmemory", "redis_config_maxclients"}


def test_everything_with_secrets_redacted() -> None:
    assert redis_config.commands("CFG", True) == (("CFG", "GET", "*"),)
    dbs, families = collect([ALL], everything=True)
    assert dbs == 16
    pairs = {lbl["key"]: lbl["value"] for _, lbl, _ in families["redis_config_key_value"].samples}
    assert "requirepass" not in pairs and "masterauth" not in pairs
    assert pairs["save"] == "3600 1 300 100" and pairs["appendonly"] == "no"
    numbers = {lbl["key"]: v for _, lbl, v in families["redis_config_value"].samples}
    # Numbers as Go's ParseFloat reads them: no spaces, no words.
    assert numbers == {
        "maxmemory": 0,
        "maxclients": 10000,
        "io-threads": 1,
        "databases": 16,
        "hz": 10,
    }
    assert metrics.value(families, "redis_config_io_threads") == 1


def test_secrets_exported_when_redaction_is_off() -> None:
    _, families = collect([ALL], everything=True, redact=False)
    assert (
        metrics.value(families, "redis_config_key_value", key="requirepass", value="hunter2") == 1
    )
