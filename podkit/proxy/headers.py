"""Request and response heads as the proxy forwards them (RFC 9110 §7.6.1 hop-by-hop).

Header names are classified through a dict keyed by the raw bytes (common spellings are
entered as they come); `.lower()` is only paid for unusual casings, and the checks of an
unknown name (underscores, framing look-alikes) once per name, when it is first seen.
"""

from __future__ import annotations

import re
from enum import IntEnum


class H(IntEnum):
    """What the engine does with a header."""

    HOP = 1  # dropped: hop-by-hop
    HOST = 2
    CONTENT_LENGTH = 3
    TRANSFER_ENCODING = 4
    CONNECTION = 5
    UPGRADE = 6
    XFF = 7
    XFP = 8
    XFH = 9
    FORWARDED = 10
    EXPECT = 11
    STRIP = 12  # dropped: only the proxy may set it (client certificate identity)
    HSTS = 13
    UNDERSCORE = 14  # a name with "_": dropped unless passed (nginx: underscores_in_headers)
    LOOKALIKE = 15  # reads as Content-Length or Transfer-Encoding, but is not: refused
    REQUEST_ID = 16  # X-Request-Id, with the access log on: kept from a trusted peer only


_BASE = {
    b"host": H.HOST,
    b"content-length": H.CONTENT_LENGTH,
    b"transfer-encoding": H.TRANSFER_ENCODING,
    b"connection": H.CONNECTION,
    b"upgrade": H.UPGRADE,
    b"keep-alive": H.HOP,
    b"proxy-connection": H.HOP,
    b"te": H.HOP,
    b"trailer": H.HOP,
    b"x-forwarded-for": H.XFF,
    b"x-forwarded-proto": H.XFP,
    b"x-forwarded-host": H.XFH,
    b"forwarded": H.FORWARDED,
    b"expect": H.EXPECT,
    b"strict-transport-security": H.HSTS,
}


def _spellings(name: bytes) -> set[bytes]:
    title = b"-".join(part.capitalize() for part in name.split(b"-"))
    return {name, title, name.upper(), title.replace(b"-For", b"-FOR")}


def classifier(strip: tuple[bytes, ...], request_id: bool = False) -> dict[bytes, H | None]:
    """name (any common spelling) → kind; `strip`: the client identity headers' names;
    `request_id`: X-Request-Id is the proxy's (the access log is on)."""
    table = dict(_BASE)
    for name in strip:
        table[name.lower()] = H.STRIP
    if request_id:
        table[b"x-request-id"] = H.REQUEST_ID
    return {spelling: kind for name, kind in table.items() for spelling in _spellings(name)}


# What a framing header's name reads as once "-" and "_" are gone and case is ignored:
# Transfer_Encoding, Transfer---Encoding, ContentLength (http-desync-guardian's "Ambiguous,
# SuspiciousHeader"). A server that folds "_" into "-" (CGI, WSGI) would frame by them.
_FRAMING = frozenset({b"contentlength", b"transferencoding"})


def unusual(table: dict[bytes, H | None], lower: bytes) -> H | None:
    """The kind of a lower-case name that is not in the table: a framing look-alike, a
    name with underscores (STRIP when it would fold into one of the proxy's own headers,
    X_Forwarded_For or X_Client_Cert_Subject, so that no option can pass it), or None."""
    if lower.translate(None, b"-_") in _FRAMING:
        return H.LOOKALIKE
    if b"_" not in lower:
        return None
    alias = table.get(lower.replace(b"_", b"-"))
    return H.UNDERSCORE if alias is None else H.STRIP


class Miss:
    """The value of `table.get(name, MISS)` for a name not yet in a classifier table."""


MISS = Miss()
CACHE_LIMIT = 4096  # header names remembered as they were spelled; beyond, .lower() each time


def classify(table: dict[bytes, H | None], name: bytes) -> H | None:
    kind = table.get(name, MISS)
    if isinstance(kind, Miss):
        lower = name.lower()
        kind = table.get(lower, MISS)
        if isinstance(kind, Miss):
            kind = unusual(table, lower)
        if len(table) < CACHE_LIMIT:
            table[name] = kind  # unknown names too: the next time is one lookup
    return kind


def connection_tokens(values: list[bytes]) -> tuple[bool, bool, set[bytes]]:
    """(close, upgrade, other header names) from Connection header values."""
    close = upgrade = False
    others: set[bytes] = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip().lower()
            if token == b"close":
                close = True
            elif token == b"upgrade":
                upgrade = True
            elif token and token != b"keep-alive":
                others.add(token)
    return close, upgrade, others


def is_chunked(values: list[bytes]) -> bool:
    # llhttp has already refused any Transfer-Encoding whose last coding is not chunked.
    return bool(values) and values[-1].rsplit(b",", 1)[-1].strip().lower() == b"chunked"


def forwarded_pair(ip: str) -> bytes:
    """RFC 7239 node: IPv6 addresses are quoted and bracketed."""
    return f'"[{ip}]"'.encode() if ":" in ip else ip.encode()


def authority(sockname: object) -> bytes:
    """host:port of a listening address as the transport gives it (IPv6 bracketed); a unix
    socket has none, so it is localhost."""
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = str(sockname[0]), int(sockname[1])
        return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}").encode()
    return b"localhost"


# RFC 3986 authority: reg-name or IP literal, optional port. No spaces, slashes or userinfo.
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")


def valid_host(value: bytes) -> bool:
    return _HOST.fullmatch(value) is not None


def origin_form(target: bytes) -> tuple[bytes, bytes]:
    """(authority, origin-form target) of a valid absolute-form target:
    http://host:8080/p?q → (host:8080, /p?q)."""
    rest = target.partition(b"://")[2]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return rest[:cut], path if path.startswith(b"/") else b"/" + path


def valid_target(method: bytes, target: bytes) -> bool:
    """origin-form (/path), absolute-form without userinfo, or * for OPTIONS."""
    if target.startswith(b"/"):
        return True
    if target == b"*":
        return method == b"OPTIONS"
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return False
    authority = rest.split(b"/", 1)[0].split(b"?", 1)[0]
    return b"@" not in authority and valid_host(authority)
