"""CONFIG GET → config_maxmemory, config_maxclients, config_io_threads, the database count,
and with --include-config-metrics every setting as config_key_value / config_value.

By default only the named keys are asked for (one CONFIG GET each: Redis before 7.0 takes a
single pattern per call, and named keys cost Redis ~5 µs where `CONFIG GET *` costs ~130 µs).
--include-config-metrics needs them all, so it asks `CONFIG GET *` instead. Secrets
(masterauth, requirepass, TLS key passphrases) are left out unless
--redact-config-metrics=false, as redis_exporter does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapter.keys import text
from adapter.scripts import go_float
from podkit.exposition import Exposition, gauge, labels

NAMED = ("maxmemory", "maxclients", "io-threads")  # exported as config_<key>
REDACTED = frozenset({"masterauth", "requirepass", "tls-key-file-pass", "tls-client-key-file-pass"})

KEY_VALUE = gauge("config_key_value", "Config key and value")
VALUE = gauge("config_value", "Config key and value as metric")
NAMED_FAMILIES = {key: gauge("config_" + key.replace("-", "_")) for key in NAMED}


def commands(config_command: str, everything: bool) -> tuple[tuple[str, ...], ...]:
    if everything:
        return ((config_command, "GET", "*"),)
    return tuple((config_command, "GET", key) for key in (*NAMED, "databases"))


def _pairs(replies: Sequence[Any]) -> list[tuple[str, str]]:
    # CONFIG GET answers [name, value, ...] (RESP2); an error or [] when refused or unknown.
    pairs = []
    for reply in replies:
        if isinstance(reply, list):
            pairs += [(text(reply[i]), text(reply[i + 1])) for i in range(0, len(reply) - 1, 2)]
    return pairs


def add_config(out: Exposition, replies: Sequence[Any], *, everything: bool, redact: bool) -> int:
    """Adds the config families; returns the number of databases (0 when unknown)."""
    db_count = 0
    for key, value in _pairs(replies):
        number = go_float(value)
        if key == "databases" and value.isdigit():
            db_count = int(value)
        if everything and not (redact and key in REDACTED):
            out.put(KEY_VALUE, 1.0, labels((("key", key), ("value", value))))
            if number is not None:
                out.put(VALUE, number, labels((("key", key),)))
        family = NAMED_FAMILIES.get(key)
        if family is not None and number is not None:
            out.put(family, number)
    return db_count
