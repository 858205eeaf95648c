"""The PROXY protocol header on the client listener: the parser against headers as HAProxy's
spec (proxy-protocol.txt) writes them, and the reader in front of the engine."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from proxy_fakes import FakeTransport, Harness

from podkit.proxy import ProxySettings
from podkit.proxy.downstream import ClientConnection
from podkit.proxy.proxy_header import V2, ProxyHeaderError, header_v2, parse, tlv

LB = ("10.0.0.2", 40000)  # the listed balancer
GET = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n"


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2 + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body


V2_TCP4 = v2(1, 0x11, bytes([203, 0, 113, 7, 10, 0, 0, 1]) + struct.pack(">HH", 5555, 443))
V2_TCP6 = v2(
    1,
    0x21,
    ipaddress.IPv6Address("2001:db8::7").packed + bytes(16) + struct.pack(">HH", 5555, 443),
)
TLV = bytes([0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0])  # PP2_TYPE_SSL, skipped


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\nGET", (42, "203.0.113.7", 5555)),
        (b"PROXY TCP6 2001:db8::7 ::1 5555 443\r\n", (37, "2001:db8::7", 5555)),
        (b"PROXY UNKNOWN\r\n", (15, "", 0)),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", (35, "", 0)),
        (V2_TCP4 + b"\x16\x03\x01", (28, "203.0.113.7", 5555)),
        (V2_TCP6, (52, "2001:db8::7", 5555)),
        (v2(1, 0x11, V2_TCP4[16:] + TLV), (36, "203.0.113.7", 5555)),
        (v2(0, 0x00, b""), (16, "", 0)),  # LOCAL: a balancer's own health check
        (v2(0, 0x11, V2_TCP4[16:]), (28, "", 0)),  # LOCAL with addresses: still its own
        (v2(1, 0x00, b""), (16, "", 0)),  # UNSPEC
        # not whole yet
        (b"PROXY TCP4 203.0.113.7", None),
        (b"PRO", None),
        (V2[:7], None),
        (V2_TCP4[:20], None),
    ],
)
def test_parse(data: bytes, expected: tuple[int, str, int] | None) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET / HTTP/1.1\r\n", id="no-header"),
        pytest.param(b"\x16\x03\x01\x02\x00", id="tls-without-header"),
        pytest.param(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555\r\n", id="v1-missing-port"),
        pytest.param(b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", id="v1-family-mismatch"),
        pytest.param(b"PROXY TCP4 203.0.113.256 10.0.0.1 1 2\r\n", id="v1-bad-address"),
        pytest.param(b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n", id="v1-port-too-big"),
        pytest.param(b"PROXY TCP4 203.0.113.7 10.0.0.1 080 2\r\n", id="v1-port-leading-zero"),
        pytest.param(b"PROXY TCP5 203.0.113.7 10.0.0.1 1 2\r\n", id="v1-unknown-protocol"),
        pytest.param(b"PROXY TCP4  203.0.113.7 10.0.0.1 1 2\r\n", id="v1-double-space"),
        pytest.param(b"PROXY UNKNOWN" + b" " * 100, id="v1-too-long"),
        pytest.param(V2 + b"\x10\x11\x00\x00", id="v2-version-1"),
        pytest.param(V2 + b"\x22\x11\x00\x00", id="v2-command-2"),
        pytest.param(v2(1, 0x12, V2_TCP4[16:]), id="v2-datagram"),
        pytest.param(v2(1, 0x11, b"\x01\x02"), id="v2-short-address"),
        pytest.param(v2(1, 0x41, b""), id="v2-unknown-family"),
    ],
)
def test_parse_refuses(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


def reader(settings: ProxySettings, peer: tuple[str, int]) -> tuple[Harness, FakeTransport]:
    """A server whose connections start with the PROXY header reader, one connection from
    `peer`."""
    h = Harness(settings, peer=peer)
    protocol = h.server.proxy_header_reader()
    h.transport = FakeTransport(protocol, peer=peer)
    protocol.connection_made(h.transport)  # type: ignore[arg-type]
    return h, h.transport


LISTED = ProxySettings(proxy_protocol_from=(ipaddress.ip_network("10.0.0.0/30"),))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n", id="v1"),
        pytest.param(V2_TCP4, id="v2"),
    ],
)
async def test_a_listed_peer_gives_the_client_address(header: bytes) -> None:
    h, transport = reader(LISTED, LB)
    await h.send(header[:9])  # a header may arrive in pieces
    await h.send(header[9:] + GET)
    assert isinstance(transport.protocol, ClientConnection)
    assert transport.protocol.peer == "203.0.113.7"
    sent = h.upstream.sent()
    assert sent.startswith(b"GET / HTTP/1.1\r\n")
    assert b"X-Forwarded-For: 203.0.113.7\r\n" in sent  # not the balancer's 10.0.0.2


async def test_the_trusted_decision_is_made_for_the_client_address() -> None:
    """The balancer's address being trusted does not make its clients' X-Forwarded-For
    trusted; the carried address being trusted does."""
    lb_trusted = ProxySettings(
        proxy_protocol_from=LISTED.proxy_protocol_from,
        trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),),
    )
    h, _ = reader(lb_trusted, LB)
    await h.send(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n" + GET)
    assert b"X-Forwarded-For: 203.0.113.7\r\n" in h.upstream.sent()
    h, _ = reader(lb_trusted, LB)
    await h.send(b"PROXY TCP4 10.9.9.9 10.0.0.1 5555 443\r\n" + GET)
    assert b"X-Forwarded-For: 1.1.1.1, 10.9.9.9\r\n" in h.upstream.sent()


async def test_a_local_command_keeps_the_connections_own_address() -> None:
    h, transport = reader(LISTED, LB)
    await h.send(v2(0, 0x00, b"") + GET)
    assert isinstance(transport.protocol, ClientConnection)
    assert transport.protocol.peer == "10.0.0.2"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n" + GET, id="v1"),
        pytest.param(V2_TCP4 + GET, id="v2"),
    ],
)
async def test_a_header_from_an_unlisted_peer_is_a_forgery(data: bytes) -> None:
    h, transport = reader(LISTED, ("192.0.2.50", 40000))
    await h.send(data)
    assert transport.closed and h.received() == b"" and h.upstream.transports == []
    assert h.server.stats.rejected == {"proxy_protocol": 1}


async def test_an_unlisted_peer_without_a_header_is_served_as_itself() -> None:
    h, transport = reader(LISTED, ("192.0.2.50", 40000))
    await h.send(b"PR")  # could still be "PROXY ": wait for more
    assert transport.protocol is not None and not isinstance(transport.protocol, ClientConnection)
    await h.send(b"OPFIND / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(transport.protocol, ClientConnection)
    assert transport.protocol.peer == "192.0.2.50"
    assert h.upstream.sent().startswith(b"PROPFIND / HTTP/1.1\r\n")


async def test_a_listed_peer_must_send_the_header() -> None:
    h, transport = reader(LISTED, LB)
    await h.send(GET)
    assert transport.closed and h.upstream.transports == []
    assert h.server.stats.rejected == {"proxy_protocol": 1}


@pytest.mark.parametrize(
    ("source", "destination", "parsed"),
    [
        (("203.0.113.7", 5555), ("10.0.0.1", 443), "203.0.113.7"),
        (("2001:db8::7", 5555), ("::1", 443), "2001:db8::7"),
        (("203.0.113.7", 5555), ("::1", 443), "203.0.113.7"),  # mixed: sent IPv4-mapped
    ],
)
def test_a_sent_header_reads_back(
    source: tuple[str, int], destination: tuple[str, int], parsed: str
) -> None:
    tlvs = tlv(0x20, b"\x01\x00\x00\x00\x00")
    header = header_v2(source, destination, tlvs)
    assert parse(header + b"rest") == (len(header), parsed, 5555)
    assert header.endswith(tlvs)


def test_without_addresses_a_local_command_is_sent() -> None:
    assert header_v2(None, None) == V2 + b"\x20\x00\x00\x00"
    assert parse(header_v2(None, None)) == (16, "", 0)
