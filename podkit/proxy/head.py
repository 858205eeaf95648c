"""A request head as the engine parsed it: what `pick` sees of a request."""

from __future__ import annotations

from typing import final


@final
class RequestHead:
    """The parsed head of one request (its headers as they will be passed on), and the
    picker's own notes for it."""

    __slots__ = (
        "chunked",
        "content_length",
        "headers",
        "host",
        "hosts",
        "http11",
        "keep_alive",
        "method",
        "peer",
        "pick_state",
        "request_id",
        "started",
        "upgrade",
        "url",
    )

    def __init__(self, peer: str) -> None:
        self.peer = peer  # the client's address
        self.method = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []  # passed on as they came
        self.host: bytes | None = None
        self.hosts = 0
        self.chunked = False
        self.content_length = -1
        self.upgrade = False
        self.keep_alive = True
        self.http11 = True
        self.started = 0.0  # monotonic time its answer started to be sought
        self.pick_state: object = None  # the picker's own per-request notes (peers tried)
        self.request_id = b""  # X-Request-Id as it goes upstream (the access log on)

    def header(self, lower_name: bytes) -> bytes | None:
        """The first value of a header, by its lower-case name."""
        for name, value in self.headers:
            if name.lower() == lower_name:
                return value
        return None
