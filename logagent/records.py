"""What a line becomes: the parsers (JSON, a regex with named groups, nginx/Apache combined)
and the multi-line joiner (a start-of-record pattern gathers a stack trace into one record).

Parsers never raise: a line that does not parse is sent as it is, and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Fields = dict[str, Any]
Parser = Callable[[bytes], Fields | None]  # None: the line did not parse (sent raw, counted)

# nginx's and Apache's "combined" format. The request may be "-" or garbage (nginx logs a
# 400 that way), quotes inside are escaped (\" in Apache, \x22 in nginx).
_QUOTED = r'(?:[^"\\]|\\.)*'
COMBINED = re.compile(
    r"(?P<remote_addr>\S+) (?P<ident>\S+) (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    rf'"(?:(?P<method>[A-Z]+) (?P<path>[^ "]*)(?: (?P<protocol>[^ "]+))?|(?P<request>{_QUOTED}))" '
    r"(?P<status>\d{3}) (?P<body_bytes>\d+|-)"
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<user_agent>{_QUOTED})")?'
)
_INT_FIELDS = ("status", "body_bytes")


def parse_json(line: bytes) -> Fields | None:
    try:
        value = json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        return None
    return value if isinstance(value, dict) else None


def regex_parser(pattern: str | re.Pattern[str]) -> Parser:
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

    def parse(line: bytes) -> Fields | None:
        match = compiled.match(line.decode("utf-8", "replace"))
        if match is None:
            return None
        return {k: v for k, v in match.groupdict().items() if v is not None}

    return parse


def parse_combined(line: bytes) -> Fields | None:
    fields = regex_parser(COMBINED)(line)
    if fields is None:
        return None
    for name in _INT_FIELDS:
        value = fields.get(name)
        if value is not None:
            fields[name] = int(value) if value.isdigit() else None
    return fields


def make_parser(name: str, regex: str = "") -> Parser | None:
    """The parser for --parser; None for raw (no fields, the fast path)."""
    if name == "json":
        return parse_json
    if name == "regex":
        return regex_parser(regex)
    if name == "combined":
        return parse_combined
    return None


class Joiner:
    """Joins continuation lines to the record a start-of-record line began.

    `feed` returns the records completed by these lines; the last record is held (it may go
    on) until the next start line, `flush` (a quiet period), or it reaching `max_bytes`.
    A first line that is not a start line begins a record of its own: nothing is dropped.
    """

    def __init__(self, start: str, max_bytes: int) -> None:
        self.start = re.compile(start.encode())
        self.max_bytes = max_bytes
        self.held: list[bytes] = []
        self.held_bytes = 0  # bytes of the held lines in the file, with their newlines

    def feed(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        match = self.start.match
        for line in lines:
            size = len(line) + 1
            if self.held and (match(line) or self.held_bytes + size > self.max_bytes):
                out.append(b"\n".join(self.held))
                self.held, self.held_bytes = [], 0
            self.held.append(line)
            self.held_bytes += size
        return out

    def flush(self) -> bytes | None:
        if not self.held:
            return None
        record = b"\n".join(self.held)
        self.held, self.held_bytes = [], 0
        return record
