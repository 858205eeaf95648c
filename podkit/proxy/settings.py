"""Limits, timeouts and header policy of the proxy engine: plain values, set once.

These defaults are the only ones: the services' flags (podkit.proxy.options) take theirs
from here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# When a failed attempt goes to the next upstream (nginx's proxy_next_upstream conditions),
# as bits of ProxySettings.next_upstream; statuses are a set of their own.
NEXT_ERROR = 1  # connect refused or failed, connection reset before a response
NEXT_TIMEOUT = 2  # read or send timeout before a response
NEXT_INVALID_HEADER = 4  # an invalid response head


@dataclass(frozen=True)
class ProxySettings:
    # Limits (nginx: large_client_header_buffers, client_max_body_size)
    max_header_size: int = 16384
    max_body_size: int = 1 << 20  # 0: no limit
    # Timeouts in seconds
    header_timeout: float = 10.0  # the whole request head (slowloris) → 408
    body_timeout: float = 60.0  # between reads of a request body → 408
    keepalive_timeout: float = 75.0  # idle client connection between requests → closed
    connect_timeout: float = 5.0  # upstream connect → 502
    read_timeout: float = 60.0  # upstream silent this long → 504 (before any byte)
    send_timeout: float = 60.0  # upstream not reading the request this long → 504
    upstream_idle_timeout: float = 4.0  # pooled upstream connections are closed after this
    # Retries: a request that failed on a sent attempt goes to the next upstream only when
    # its method is idempotent, unless this is set (nginx: proxy_next_upstream non_idempotent)
    retry_non_idempotent: bool = False
    next_upstream: int = NEXT_ERROR | NEXT_TIMEOUT | NEXT_INVALID_HEADER  # 0: never retry
    # Response statuses that are a failed attempt: the response is held back and the
    # request tried on the next upstream when it may be (nginx: proxy_next_upstream http_503)
    next_upstream_statuses: frozenset[int] = frozenset()
    # Header policy
    scheme: bytes = b"https"  # what X-Forwarded-Proto says
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-* are kept and extended
    forwarded: bool = False  # also send RFC 7239 Forwarded
    via: bytes = b""  # e.g. b"1.1 sidecar"; empty: no Via
    hsts: bytes = b""  # Strict-Transport-Security value; empty: none
    # Request headers only the proxy may set (a verified client certificate's identity):
    # every copy a client sends is dropped, lower-case names
    identity_headers: tuple[bytes, ...] = ()
    # Header names with "_" are passed on (nginx: underscores_in_headers on); else dropped
    underscores_in_headers: bool = False
    # Client connections from these peers start with a PROXY protocol header (v1 or v2),
    # whose source address is then the client's; from any other peer one is refused
    proxy_protocol_from: tuple[Network, ...] = ()
    # Operation: one access log record per request, on stdout (as nginx's image does)
    access_log: bool = True
    access_log_format: Literal["text", "json"] = "text"
    pool_size: int = 64  # idle upstream connections kept per upstream
    write_buffer_high: int = 256 * 1024  # back-pressure: pause the other side above this

    def trusts(self, ip: str) -> bool:
        return within(ip, self.trusted_proxies)


def within(ip: str, networks: tuple[Network, ...]) -> bool:
    """Whether the address `ip` is in one of `networks`."""
    if not networks or not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


DEFAULTS = ProxySettings()
