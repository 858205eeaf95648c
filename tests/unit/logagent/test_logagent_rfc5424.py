"""RFC 5424 messages in RFC 6587 octet-counted frames, without sockets."""

from __future__ import annotations

import re

import pytest

from logagent.follow import Chunk
from logagent.outputs.rfc5424 import Formatter, header_field, sd_element, sd_value, unframe


class FakeTailer:
    path = "/var/log/app.log"


def chunk(lines: list[bytes], fields: list[dict[str, object] | None] | None = None) -> Chunk:
    return Chunk(FakeTailer(), 0, 0, lines, 0, 1700000000.25, fields)  # type: ignore[arg-type]


FORMATTER = Formatter(facility=1, severity=6, hostname="web-1", app_name="app",
                      metadata={"pod": "web-1", "namespace": "shop"})
HEADER = re.compile(
    rb'<14>1 2023-11-14T22:13:20\.250000Z web-1 app - - '
    rb'\[logagent@32473 file="/var/log/app\.log" pod="web-1" namespace="shop"\] '
)


def test_frames_are_octet_counted() -> None:
    lines = [b"hello", b"", b"multi\nline", "été".encode()]
    data = FORMATTER.frames([chunk(lines)])
    messages = unframe(data)
    assert len(messages) == 4
    for message, line in zip(messages, lines, strict=True):
        match = HEADER.match(message)
        assert match is not None, message
        assert message[match.end() :] == line
    first = data.split(b" ", 1)[0]
    assert int(first) == len(messages[0])  # LEN counts octets of the message only


def test_parsed_fields_go_into_a_second_sd_element() -> None:
    data = FORMATTER.frames([chunk([b"x", b"y"], [{"level": "warn", "q": 'a"]\\'}, None])])
    first, second = unframe(data)
    assert b'[fields@32473 level="warn" q="a\\"\\]\\\\"] x' in first
    assert b"fields@" not in second and second.endswith(b"] y")


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        pytest.param("web-1", 255, "web-1", id="plain"),
        pytest.param("", 48, "-", id="empty-is-nil"),
        pytest.param("my app", 48, "my_app", id="space"),
        pytest.param("é" * 3, 48, "___", id="non-ascii"),
        pytest.param("a" * 60, 48, "a" * 48, id="too-long"),
    ],
)
def test_header_field(value: str, limit: int, expected: str) -> None:
    assert header_field(value, limit) == expected


def test_sd_escaping_and_names() -> None:
    assert sd_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert sd_element("x@1", {}) == ""
    assert sd_element("x@1", {"a b=": 1, "n": None}) == '[x@1 a_b_="1"]'


@pytest.mark.parametrize(
    "data", [pytest.param(b"5 abc", id="short"), pytest.param(b"x abc", id="no-length")]
)
def test_unframe_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        unframe(data)
