"""Heads as the proxy passes them on (RFC 9110 §7.6.1): a request's hop-by-hop and
forwarding headers taken out as they are parsed, and put back as the proxy's own
(X-Forwarded-*, Forwarded, Via, the client certificate's identity); a response's headers
filtered the same way."""

from __future__ import annotations

from typing import final

from podkit.proxy.head import RequestHead
from podkit.proxy.headers import (
    MISS,
    H,
    Miss,
    authority,
    classify,
    connection_tokens,
    forwarded_pair,
    is_chunked,
    origin_form,
)
from podkit.proxy.settings import ProxySettings

Headers = list[tuple[bytes, bytes]]


@final
class Forwarding:
    """One request's hop-by-hop and forwarding headers, as the client sent them."""

    __slots__ = (
        "connection",
        "fwd",
        "lookalike",
        "request_id",
        "te",
        "underscores",
        "upgrade_header",
        "xff",
        "xfh",
        "xfp",
    )

    def __init__(self, underscores: bool = False) -> None:
        self.underscores = underscores  # pass names with "_" on (else dropped, as nginx)
        self.connection: list[bytes] = []
        self.xff: list[bytes] = []
        self.xfp: bytes | None = None
        self.xfh: bytes | None = None
        self.fwd: list[bytes] = []
        self.te: list[bytes] = []
        self.upgrade_header = False
        self.lookalike = b""  # a framing look-alike's name: the request is refused
        self.request_id: bytes | None = None

    def reset(self) -> None:
        self.connection = []
        self.xff = []
        self.xfp = self.xfh = None
        self.fwd = []
        self.te = []
        self.upgrade_header = False
        self.lookalike = b""
        self.request_id = None

    def add(
        self, table: dict[bytes, H | None], head: RequestHead, name: bytes, value: bytes
    ) -> None:
        """One parsed header: onto the head as it came, kept aside here, or dropped."""
        kind = table.get(name, MISS)
        if isinstance(kind, Miss):
            kind = classify(table, name)
        if kind is None:
            head.headers.append((name, value))
        elif kind is H.HOST:
            head.hosts += 1
            head.host = value
            head.headers.append((name, value))
        elif kind is H.CONTENT_LENGTH:
            head.content_length = int(value)  # llhttp has checked it is digits
            head.headers.append((name, value))
        elif kind is H.EXPECT:
            head.headers.append((name, value))
        elif kind is H.LOOKALIKE:
            self.lookalike = self.lookalike or name
        elif kind is not H.HOP and kind is not H.STRIP and not self.take(kind, value):
            head.headers.append((name, value))
        # H.HOP and H.STRIP: dropped

    def take(self, kind: H, value: bytes) -> bool:
        """Keep a header of this kind aside; False when it is passed on as it came."""
        if kind is H.TRANSFER_ENCODING:
            self.te.append(value)
        elif kind is H.CONNECTION:
            self.connection.append(value)
        elif kind is H.XFF:
            self.xff.append(value)
        elif kind is H.XFP:
            self.xfp = value
        elif kind is H.XFH:
            self.xfh = value
        elif kind is H.FORWARDED:
            self.fwd.append(value)
        elif kind is H.UPGRADE:
            self.upgrade_header = True
            return False  # dropped in `headers_to_pass` unless an upgrade
        elif kind is H.UNDERSCORE:
            return not self.underscores
        elif kind is H.REQUEST_ID:
            self.request_id = value
        else:
            return False
        return True

    def headers_to_pass(
        self, head: RequestHead, table: dict[bytes, H | None], can_upgrade: bool
    ) -> Headers:
        """Settles the head's target, upgrade and framing; the headers that go on as they
        came."""
        if not head.url.startswith(b"/") and head.url != b"*":
            # Absolute-form (GET http://host/path): on in origin-form, with the target's
            # authority as Host, as RFC 9112 §3.2.2 asks of a proxy and nginx does, so the
            # upstream and X-Forwarded-Host cannot disagree on the host.
            head.host, head.url = origin_form(head.url)
            head.headers = [
                (n, head.host if classify(table, n) is H.HOST else v) for n, v in head.headers
            ]
        _close, upgrade, others = connection_tokens(self.connection)
        head.upgrade = upgrade and can_upgrade
        head.chunked = is_chunked(self.te)
        headers = head.headers
        if others:  # headers the client named in Connection are hop-by-hop too
            headers = [(n, v) for n, v in headers if n.lower() not in others]
        if self.upgrade_header and not head.upgrade:
            headers = [(n, v) for n, v in headers if classify(table, n) is not H.UPGRADE]
        return headers

    def request_head(
        self,
        head: RequestHead,
        headers: Headers,
        settings: ProxySettings,
        trusted: bool,
        identity: bytes,
        sockname: object,
    ) -> bytes:
        """The head the upstream gets, in one piece. `identity`: the client certificate's
        header lines, made by the service once per connection."""
        parts = [head.method, b" ", head.url, b" HTTP/1.1\r\n"]
        if head.host is None:
            # HTTP/1.0 without Host, forwarded as HTTP/1.1, which requires one: the address
            # the client reached, as a server names itself when a request does not.
            parts.append(b"Host: " + authority(sockname) + b"\r\n")
        parts += [b"%s: %s\r\n" % pair for pair in headers]
        peer = head.peer.encode()
        if trusted and self.xff:
            parts.append(b"X-Forwarded-For: " + b", ".join(self.xff) + b", " + peer + b"\r\n")
        else:
            parts.append(b"X-Forwarded-For: " + peer + b"\r\n")
        proto = self.xfp if trusted and self.xfp else settings.scheme
        parts.append(b"X-Forwarded-Proto: " + proto + b"\r\n")
        host = self.xfh if trusted and self.xfh else head.host
        if host:
            parts.append(b"X-Forwarded-Host: " + host + b"\r\n")
        if settings.forwarded:
            node = b"for=" + forwarded_pair(head.peer) + b";proto=" + settings.scheme
            if head.host:
                node += b';host="' + head.host + b'"'
            prior = b", ".join(self.fwd) + b", " if trusted and self.fwd else b""
            parts.append(b"Forwarded: " + prior + node + b"\r\n")
        if settings.via:
            parts.append(b"Via: " + settings.via + b"\r\n")
        if identity:
            parts.append(identity)
        if head.request_id:
            parts.append(b"X-Request-Id: " + head.request_id + b"\r\n")
        if head.upgrade:
            parts.append(b"Connection: upgrade\r\n")
        elif head.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


# What `pass_response_headers` saw, as bits.
HAS_LENGTH = 1
CHUNKED = 2
HAS_HSTS = 4


def pass_response_headers(
    table: dict[bytes, H | None], headers: Headers, upgrade: bool, parts: list[bytes]
) -> int:
    """Append the response headers that go on to `parts`; hop-by-hop ones are dropped."""
    seen = 0
    for name, value in headers:
        kind = table.get(name, MISS)
        if isinstance(kind, Miss):
            kind = classify(table, name)
        if kind is None:
            parts.append(b"%s: %s\r\n" % (name, value))
        elif kind is H.CONTENT_LENGTH:
            seen |= HAS_LENGTH
            parts.append(b"%s: %s\r\n" % (name, value))
        elif kind is H.TRANSFER_ENCODING:
            seen |= CHUNKED
        elif kind is H.HSTS:
            seen |= HAS_HSTS
            parts.append(b"%s: %s\r\n" % (name, value))
        elif kind is H.UPGRADE and upgrade:
            parts.append(b"%s: %s\r\n" % (name, value))
        elif kind not in (H.HOP, H.CONNECTION, H.UPGRADE):
            # ordinary in a response: Host, X-Forwarded-*, the identity names, X-Request-Id,
            # names with "_" or that read as framing ones (the framing is the upstream's own)
            parts.append(b"%s: %s\r\n" % (name, value))
    return seen
