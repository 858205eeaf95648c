"""The access log: one record per request, as nginx's `combined` format with the proxy's
extras appended, or as one JSON object per line.

A record is built only when the log is on. It costs its formatting and a list append: the
records of one event-loop iteration go out in one write, scheduled by the first of them, so
a request pays for no logging.Logger, handler or lock. Writes are cut at line ends into
pieces of at most PIPE_BUF bytes, which a pipe keeps whole, so the lines of several workers
sharing stdout never interleave.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import final

from podkit.proxy.head import RequestHead

Sink = Callable[[bytes], None]
PIPE_BUF = 4096
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def write_stdout(data: bytes) -> None:
    # bytes, not a memoryview: mypyc's compiled slice of a memoryview did not advance
    while data:
        data = data[os.write(1, data) :]


def escape(value: bytes) -> str:
    """A value as nginx writes it between quotes: `"`, `\\`, controls and non-ASCII as \\xHH."""
    text = value.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(chr(b) if b in _PLAIN else f"\\x{b:02X}" for b in value)


def referer_and_agent(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    referer = agent = b""
    for name, value in headers:
        if len(name) in (7, 10):  # only these lengths are worth a .lower()
            lower = name.lower()
            if lower == b"referer":
                referer = value
            elif lower == b"user-agent":
                agent = value
    return referer, agent


@final
class AccessLog:
    """Records in one format, buffered until the end of the loop iteration."""

    __slots__ = ("_clock", "_second", "json", "lines", "pending", "sink")

    def __init__(self, fmt: str = "text", sink: Sink = write_stdout) -> None:
        self.json = fmt == "json"
        self.sink = sink
        self.lines: list[str] = []
        self.pending = False  # a flush is scheduled
        self._second = -1  # the second _clock was formatted for
        self._clock = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            t = time.gmtime(second)
            if self.json:
                self._clock = time.strftime("%Y-%m-%dT%H:%M:%S", t)
            else:
                month = MONTHS[t.tm_mon - 1]
                self._clock = (
                    f"{t.tm_mday:02d}/{month}/{t.tm_year}:"
                    f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
                )
            self._second = second
        return self._clock

    def record(
        self,
        head: RequestHead,
        status: int,
        body_bytes: int,
        seconds: float,
        upstream_addr: str,
        upstream_status: int,
    ) -> None:
        """One request: `upstream_addr` "" when none was picked, `upstream_status` 0 when
        no upstream answered (the proxy did)."""
        now = time.time()
        referer, agent = referer_and_agent(head.headers)
        protocol = "HTTP/1.1" if head.http11 else "HTTP/1.0"
        if self.json:
            line = json.dumps(
                {
                    "time": f"{self._time(now)}.{int(now * 1000) % 1000:03d}Z",
                    "logger": "access",
                    "remote_addr": head.peer,
                    "request_method": head.method.decode("latin-1"),
                    "request_uri": head.url.decode("latin-1"),
                    "server_protocol": protocol,
                    "status": status,
                    "body_bytes_sent": body_bytes,
                    "http_referer": referer.decode("latin-1"),
                    "http_user_agent": agent.decode("latin-1"),
                    "request_time": round(seconds, 3),
                    "upstream_addr": upstream_addr or None,
                    "upstream_status": upstream_status or None,
                    "request_id": head.request_id.decode("latin-1"),
                }
            )
        else:
            request = f"{escape(head.method)} {escape(head.url)} {protocol}" if head.method else "-"
            line = (
                f'{head.peer or "-"} - - [{self._time(now)}] "{request}" {status} {body_bytes} '
                f'"{escape(referer) if referer else "-"}" "{escape(agent) if agent else "-"}" '
                f'rt={seconds:.3f} ua="{upstream_addr or "-"}" us="{upstream_status or "-"}" '
                f'rid="{head.request_id.decode("latin-1") or "-"}"'
            )
        self.lines.append(line + "\n")
        if not self.pending:
            self.pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.pending = False
        lines = self.lines
        if not lines:
            return
        self.lines = []
        piece: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) > PIPE_BUF and piece:
                self.sink("".join(piece).encode())
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        self.sink("".join(piece).encode())
