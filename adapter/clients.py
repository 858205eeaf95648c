"""--export-client-list: CLIENT LIST → connected_clients_details, one series per connection.

Labels are redis_exporter 1.45's (exporter/clients.go): name, created_at and idle_since (unix
seconds, from age and idle), flags, db, omem, cmd, host, and with --export-client-port also
port. A line it cannot read (a field without exactly one '=') is skipped, as there. The
command rides in the scrape's one round trip.
"""

from __future__ import annotations

import re
import time
from typing import Any

from adapter.keys import text
from podkit.exposition import Exposition, gauge, labels

COMMANDS = (("CLIENT", "LIST"),)
DETAILS = gauge("connected_clients_details", "Details about connected clients")

_LINE = re.compile(r"id=\d+ addr=\S+")
_LABELS = ("name", "created_at", "idle_since", "flags", "db", "omem", "cmd", "host")


def parse_client(line: str, now: int) -> dict[str, str] | None:
    """One CLIENT LIST line as label values, or None when redis_exporter would skip it."""
    if not _LINE.match(line):
        return None
    client = dict.fromkeys(_LABELS, "")
    for part in line.split(" "):
        fields = part.split("=")
        if len(fields) != 2:
            return None
        key, value = fields
        if key in ("age", "idle"):
            if not value.lstrip("-").isdigit():
                return None
            client["created_at" if key == "age" else "idle_since"] = str(now - int(value))
        elif key == "addr":
            host, sep, port = value.rpartition(":")
            if not sep:
                return None
            client["host"], client["port"] = host, port
        elif key in client:
            client[key] = value
    return client


def add_clients(out: Exposition, reply: Any, *, with_port: bool, now: int | None = None) -> None:
    if not isinstance(reply, bytes):
        return
    now = int(time.time()) if now is None else now
    names = (*_LABELS, "port") if with_port else _LABELS
    for line in text(reply).split("\n"):
        client = parse_client(line.rstrip("\r"), now)
        if client is not None:
            out.put(DETAILS, 1.0, labels((name, client.get(name, "")) for name in names))
