"""RFC 5424 syslog messages in RFC 6587 octet-counted frames ("LEN SP MSG"), which carry
multi-line records and any byte intact, unlike newline framing.

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ELEMENT...] MSG

The header is built once per chunk (same file, same read time); per record only the length
and the message change. Structured data carries the file and the Downward API metadata
under the SD-ID `logagent@32473`, and parsed fields under `fields@32473` (32473 is the
private enterprise number RFC 5612 reserves for documentation: change it for your own).
"""

from __future__ import annotations

import re
from typing import Any

from logagent.follow import Chunk
from logagent.outputs import iso_time

ENTERPRISE = 32473
NILVALUE = "-"
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")
_NOT_SD_NAME = re.compile(r'[^\x21-\x7e]|[=\]" ]')


def header_field(value: str, limit: int) -> str:
    """HOSTNAME, APP-NAME...: printable US-ASCII without spaces, at most `limit` long."""
    cleaned = _NOT_PRINTUSASCII.sub("_", value)[:limit]
    return cleaned or NILVALUE


def sd_name(name: str) -> str:
    return _NOT_SD_NAME.sub("_", name)[:32] or "_"


def sd_value(value: Any) -> str:
    """PARAM-VALUE: UTF-8 with '"', '\\' and ']' escaped by a backslash (RFC 5424 6.3.3)."""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def sd_element(sd_id: str, params: dict[str, Any]) -> str:
    if not params:
        return ""
    body = "".join(f' {sd_name(k)}="{sd_value(v)}"' for k, v in params.items() if v is not None)
    return f"[{sd_id}{body}]"


class Formatter:
    def __init__(
        self,
        *,
        facility: int,
        severity: int,
        hostname: str,
        app_name: str,
        metadata: dict[str, str],
    ) -> None:
        self.pri = f"<{facility * 8 + severity}>1 "
        self.host_app = f" {header_field(hostname, 255)} {header_field(app_name, 48)} - - "
        self.metadata = metadata
        self._meta_id = f"logagent@{ENTERPRISE}"
        self._fields_id = f"fields@{ENTERPRISE}"

    def header(self, chunk: Chunk) -> bytes:
        sd = sd_element(self._meta_id, {"file": chunk.tailer.path, **self.metadata})
        return (self.pri + iso_time(chunk.read_at) + self.host_app + sd + " ").encode()

    def frames(self, batch: list[Chunk]) -> bytes:
        """The batch as one run of octet-counted frames."""
        out: list[bytes] = []
        for chunk in batch:
            header = self.header(chunk)
            if chunk.fields is None:
                size = len(header)
                out.extend(b"%d %b%b" % (size + len(line), header, line) for line in chunk.lines)
                continue
            for line, fields in zip(chunk.lines, chunk.fields, strict=True):
                head = header
                if fields:  # the parsed fields as a second SD element, before the space
                    head = header[:-1] + sd_element(self._fields_id, fields).encode() + b" "
                out.append(b"%d %b%b" % (len(head) + len(line), head, line))
        return b"".join(out)


def unframe(data: bytes) -> list[bytes]:
    """Messages from octet-counted frames (for tests and receivers); raises on a bad frame."""
    messages, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        start = space + 1
        if start + length > len(data):
            raise ValueError("truncated frame")
        messages.append(data[start : start + length])
        pos = start + length
    return messages
