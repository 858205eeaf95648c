"""Parsers, table-driven against recorded lines on disk, and the multi-line joiner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logagent.records import Joiner, make_parser, parse_combined, parse_json, regex_parser

DATA = Path(__file__).parent / "data"
COMBINED_LINES = (DATA / "combined.log").read_bytes().splitlines()
COMBINED_EXPECTED = json.loads((DATA / "combined.expected.json").read_text())


@pytest.mark.parametrize(
    ("line", "expected"),
    list(zip(COMBINED_LINES, COMBINED_EXPECTED, strict=True)),
    ids=[f"combined-{i}" for i in range(len(COMBINED_LINES))],
)
def test_combined_recorded_lines(line: bytes, expected: dict[str, object]) -> None:
    assert parse_combined(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"just some text", id="text"),
        pytest.param(b'127.0.0.1 - - [x] "GET / HTTP/1.1" abc 1', id="status-not-a-number"),
    ],
)
def test_combined_rejects(line: bytes) -> None:
    assert parse_combined(line) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(b'{"level":"info","msg":"hi"}', {"level": "info", "msg": "hi"}, id="object"),
        pytest.param(b'{"n": 1, "nested": {"a": [1]}}', {"n": 1, "nested": {"a": [1]}},
                     id="nested"),
        pytest.param(b"[1, 2]", None, id="array-is-not-a-record"),
        pytest.param(b'"text"', None, id="string"),
        pytest.param(b"{broken", None, id="broken"),
        pytest.param(b"\xff\xfe{}", None, id="not-utf8"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_json(line: bytes, expected: dict[str, object] | None) -> None:
    assert parse_json(line) == expected


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        pytest.param(r"(?P<level>\w+): (?P<msg>.*)", b"ERROR: disk full", {"level": "ERROR",
                     "msg": "disk full"}, id="two-groups"),
        pytest.param(r"(?P<level>\w+)(?: \[(?P<tid>\d+)\])?", b"INFO", {"level": "INFO"},
                     id="optional-group-absent"),
        pytest.param(r"(?P<level>\d+)", b"INFO", None, id="no-match"),
        pytest.param(r"(?P<word>\w+)", "été".encode(), {"word": "été"}, id="utf8"),
        pytest.param(r"(?P<x>.+)", b"\xff\xfe", {"x": "\ufffd\ufffd"}, id="invalid-utf8-replaced"),
    ],
)
def test_regex(pattern: str, line: bytes, expected: dict[str, str] | None) -> None:
    assert regex_parser(pattern)(line) == expected


def test_make_parser() -> None:
    assert make_parser("raw") is None
    assert make_parser("json") is parse_json
    assert make_parser("combined") is parse_combined
    parser = make_parser("regex", r"(?P<a>.)")
    assert parser is not None and parser(b"x") == {"a": "x"}


JAVA_TRACE = [
    b"2024-01-01 12:00:00 ERROR request failed",
    b"java.lang.IllegalStateException: boom",
    b"\tat com.example.App.run(App.java:10)",
    b"\tat com.example.App.main(App.java:3)",
    b"2024-01-01 12:00:01 INFO next",
]


@pytest.mark.parametrize(
    ("lines", "records", "held"),
    [
        pytest.param(JAVA_TRACE, [b"\n".join(JAVA_TRACE[:4])], [JAVA_TRACE[4]], id="java-trace"),
        pytest.param([b"  orphan continuation", b"2024-01-01 x"], [b"  orphan continuation"],
                     [b"2024-01-01 x"], id="orphan-first-line-kept"),
        pytest.param([b"2024-01-01 a", b"2024-01-01 b"], [b"2024-01-01 a"], [b"2024-01-01 b"],
                     id="one-line-records"),
    ],
)
def test_joiner(lines: list[bytes], records: list[bytes], held: list[bytes]) -> None:
    joiner = Joiner(r"\d{4}-\d\d-\d\d ", max_bytes=1 << 20)
    assert joiner.feed(lines) == records
    assert joiner.held == held
    assert joiner.held_bytes == sum(len(line) + 1 for line in held)
    assert joiner.flush() == b"\n".join(held)
    assert joiner.flush() is None and joiner.held_bytes == 0


def test_joiner_caps_a_record_at_max_bytes() -> None:
    joiner = Joiner(r"START", max_bytes=30)
    out = joiner.feed([b"START 1", b"continuation 1", b"continuation 2", b"continuation 3"])
    assert out == [b"START 1\ncontinuation 1"]  # the next line would pass 30 bytes
    assert joiner.held == [b"continuation 2", b"continuation 3"]
