"""The PROXY protocol (HAProxy's, v1 text and v2 binary) on the client listener: an L4 load
balancer in front says who its client was, in a header before the connection's first byte.

Only peers in `--proxy-protocol-from` may say so, and from them the header is required (as
HAProxy's `tcp-request connection expect-proxy layer4 if { src <CIDRs> }`); a connection
from any other peer that starts with a PROXY header is a forgery and is closed. The address
the header carries is then the client's (X-Forwarded-For, the access log, the trusted-proxy
decision); a v2 LOCAL command or a v1 `UNKNOWN` (a balancer's own health check) keeps the
connection's own. TLVs (v2) are skipped.

`ProxyHeaderReader` is a connection's first protocol, once: it reads the header, then hands
the transport to the protocol the service builds for that source address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import cast

from podkit.proxy.settings import Network, within
from podkit.proxy.stats import ProxyStats

log = logging.getLogger(__name__)

V1 = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the spec's bound)
V2 = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family, length

# A service's protocol for a connection whose client is `source`:`port` ("" and 0 for the
# peer itself).
AppFactory = Callable[[str, int], asyncio.BaseProtocol]


class ProxyHeaderError(ValueError):
    pass


def starts_with_header(data: bytes) -> bool:
    """Whether `data` starts with (the beginning of) a PROXY header, v1 or v2."""
    head = data[: len(V2)]
    return head.startswith(V1) or head.startswith(V2) or V1.startswith(head) or V2.startswith(head)


Parsed = tuple[int, str, int]  # the header's length, the source address ("": none) and port


def parse(data: bytes) -> Parsed | None:
    """(the header's length, the source address and port, "" and 0 for the connection's
    own) once `data` holds a whole header; None while it may still become one.
    ProxyHeaderError otherwise."""
    if data.startswith(V2):
        return _parse_v2(data)
    if data.startswith(V1):
        return _parse_v1(data)
    if V1.startswith(data) or V2.startswith(data):
        return None
    raise ProxyHeaderError("no PROXY protocol header")


def _parse_v1(data: bytes) -> Parsed | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("v1 header longer than 107 bytes")
        return None
    fields = data[len(V1) : end].split(b" ")
    if fields[0] == b"UNKNOWN":
        return end + 2, "", 0
    if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(f"bad v1 header {data[:end]!r}")
    family = ipaddress.IPv4Address if fields[0] == b"TCP4" else ipaddress.IPv6Address
    try:
        text = [field.decode("ascii") for field in fields[1:]]
        source = family(text[0])
        family(text[1])
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError(f"bad v1 address in {data[:end]!r}") from None
    for port in text[2:]:
        if not port.isdigit() or len(port) > 5 or int(port) > 65535 or port != str(int(port)):
            raise ProxyHeaderError(f"bad v1 port in {data[:end]!r}")
    mapped = source.ipv4_mapped if isinstance(source, ipaddress.IPv6Address) else None
    return end + 2, str(mapped or source), int(text[2])


def _parse_v2(data: bytes) -> Parsed | None:
    if len(data) < V2_FIXED:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2 or command > 1:
        raise ProxyHeaderError(f"bad v2 version/command byte {data[12]:#04x}")
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = V2_FIXED + int.from_bytes(data[14:16], "big")
    if len(data) < length:
        return None
    if command == 0 or family == 0:  # LOCAL, or UNSPEC: the connection's own addresses
        return length, "", 0
    if transport != 1:
        raise ProxyHeaderError("v2 header for a datagram")
    body = data[V2_FIXED:length]
    if family == 1 and len(body) >= 12:
        return length, str(ipaddress.IPv4Address(body[:4])), int.from_bytes(body[8:10], "big")
    if family == 2 and len(body) >= 36:
        source = ipaddress.IPv6Address(body[:16])
        return length, str(source.ipv4_mapped or source), int.from_bytes(body[32:34], "big")
    if family == 3:  # AF_UNIX: no address to put in X-Forwarded-For
        return length, "", 0
    raise ProxyHeaderError(f"bad v2 address family {data[13]:#04x} or length")


class ProxyHeaderReader(asyncio.Protocol):
    """A connection's first protocol when `--proxy-protocol-from` is set (module docstring)."""

    __slots__ = (
        "app_factory",
        "buffer",
        "expected",
        "networks",
        "stats",
        "timeout",
        "timer",
        "transport",
    )

    def __init__(
        self,
        app_factory: AppFactory,
        networks: tuple[Network, ...],
        timeout: float,
        stats: ProxyStats,
    ) -> None:
        self.app_factory = app_factory
        self.networks = networks
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.buffer = b""
        self.expected = False  # the peer is listed: the header is required
        self.timeout = timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self.expected = within(peer[0] if isinstance(peer, tuple) else "", self.networks)
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def eof_received(self) -> bool | None:
        return None

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        data = self.buffer + data if self.buffer else data
        if not self.expected:
            if not starts_with_header(data):
                self._hand_over("", 0, data)
            elif len(data) >= len(V2) or data.startswith(V1):
                self._refuse("a PROXY protocol header from a peer not in --proxy-protocol-from")
            else:
                self.buffer = data  # too short to tell yet
            return
        try:
            parsed = parse(data)
        except ProxyHeaderError as exc:
            self._refuse(str(exc))
            return
        if parsed is None:
            self.buffer = data
            return
        length, source, port = parsed
        self._hand_over(source, port, data[length:])

    def _hand_over(self, source: str, port: int, rest: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        app = self.app_factory(source, port)
        transport.set_protocol(app)
        app.connection_made(transport)
        if rest and not transport.is_closing():
            cast(asyncio.Protocol, app).data_received(rest)

    def _refuse(self, why: str) -> None:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        log.warning("%s: %s", peer[0] if isinstance(peer, tuple) else "-", why)
        self.stats.reject("proxy_protocol")
        self.transport.abort()


# -- sending (the sidecar's tcp mode) ---------------------------------------------------------

Address = tuple[str, int]


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def header_v2(source: Address | None, destination: Address | None, tlvs: bytes = b"") -> bytes:
    """A v2 PROXY command for a TCP connection from `source` to `destination` (IPv4 when
    both are, else IPv6 with IPv4 mapped); without both, a LOCAL command."""
    if source is None or destination is None:
        return V2 + b"\x20\x00" + len(tlvs).to_bytes(2, "big") + tlvs
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version == dst.version == 4:
        family, addresses = 0x11, src.packed + dst.packed
    else:
        family, addresses = 0x21, _v6(src).packed + _v6(dst).packed
    body = addresses + source[1].to_bytes(2, "big") + destination[1].to_bytes(2, "big") + tlvs
    return V2 + bytes([0x21, family]) + len(body).to_bytes(2, "big") + body


def _v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        return address
    return ipaddress.IPv6Address(f"::ffff:{address}")
