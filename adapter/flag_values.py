"""Parsers of the adapter's flag values: each turns the text of a flag or variable into its
typed value, or raises OptionError saying what was expected."""

from __future__ import annotations

import csv
from urllib.parse import urlsplit

from podkit.options import OptionError


def parse_redis_addr(text: str) -> str:
    """A Redis URL; a bare host:port (redis_exporter accepts one) becomes redis://host:port."""
    value = text.strip()
    if "://" not in value:
        if not value or ":" not in value:
            raise OptionError(
                f"expected redis://host:port, rediss://host:port or unix:///path, got {text!r}"
            )
        value = "redis://" + value
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise OptionError(f"unsupported scheme {scheme!r}: use redis://, rediss:// or unix://")
    try:
        urlsplit(value).port  # noqa: B018 - raises for an unclosed [v6 or a port out of range
    except ValueError as exc:  # the URL itself is not repeated: it may hold a password
        raise OptionError(f"invalid {scheme}:// address: {exc}") from None
    return value


def parse_path(text: str) -> str:
    value = text.strip()
    if not value.startswith("/"):
        raise OptionError(f"expected a path starting with '/', got {text!r}")
    return value


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_csv(text: str) -> tuple[str, ...]:
    """One CSV record, as redis_exporter reads --check-key-groups (a pattern may be quoted
    to hold a comma); empty fields dropped."""
    try:
        (record,) = list(csv.reader([text])) or [[]]
    except (csv.Error, ValueError) as exc:
        raise OptionError(f"expected comma-separated Lua patterns: {exc}") from None
    return tuple(field.strip() for field in record if field.strip())


def parse_namespace(text: str) -> str:
    value = text.strip()
    if not value or not all(c.isalnum() or c == "_" for c in value) or value[0].isdigit():
        raise OptionError(f"a metric namespace is letters, digits and '_', got {text!r}")
    return value
