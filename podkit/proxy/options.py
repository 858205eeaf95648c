"""The options every proxy service shares (limits, timeouts, forwarding, admin, workers),
declared once; a service's config class inherits them and sets ENV_PREFIX."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from podkit import logs
from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_duration,
    parse_host_port,
)
from podkit.proxy.settings import DEFAULTS, Network, ProxySettings


def parse_size(text: str) -> int:
    """Bytes from '8192', '16k', '1m', '2g' (nginx's size syntax)."""
    value = text.strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(value[-1:], 1)
    digits = value[:-1] if scale != 1 else value
    if not digits.isdigit():
        raise OptionError(f"expected a size such as 8192, 16k or 1m, got {text!r}")
    return int(digits) * scale


def parse_networks(text: str) -> tuple[Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise OptionError(str(exc)) from None


@dataclass(frozen=True)
class ProxyOptions:
    ENV_PREFIX: ClassVar[str] = "PROXY"

    admin_listen: tuple[str, int] = option(
        ("0.0.0.0", 9000),
        env="*_ADMIN_LISTEN",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="/healthz, /readyz and /metrics",
    )
    workers: int = option(
        1, env="*_WORKERS", parse=int, help="processes sharing the port with SO_REUSEPORT"
    )
    trusted_proxies: tuple[Network, ...] = option(
        (),
        env="*_TRUSTED_PROXIES",
        parse=parse_networks,
        metavar="CIDR,...",
        help="peers whose X-Forwarded-For/-Proto/-Host are kept and appended to",
    )
    forwarded: bool = option(
        False, env="*_FORWARDED", parse=parse_bool, help="also send an RFC 7239 Forwarded header"
    )
    via: bool = option(
        False, env="*_VIA", parse=parse_bool, help="add a Via header to requests and responses"
    )
    max_header_size: int = option(
        DEFAULTS.max_header_size,
        env="*_MAX_HEADER_SIZE",
        parse=parse_size,
        help="largest request head (431 above)",
    )
    max_body_size: int = option(
        DEFAULTS.max_body_size,
        env="*_MAX_BODY_SIZE",
        parse=parse_size,
        help="largest request body, 0 for no limit (413 above)",
    )
    header_timeout: float = option(
        DEFAULTS.header_timeout,
        env="*_HEADER_TIMEOUT",
        parse=parse_duration,
        help="time to receive a request head (408 after)",
    )
    body_timeout: float = option(
        DEFAULTS.body_timeout,
        env="*_BODY_TIMEOUT",
        parse=parse_duration,
        help="time between reads of a request body (408 after)",
    )
    keepalive_timeout: float = option(
        DEFAULTS.keepalive_timeout,
        env="*_KEEPALIVE_TIMEOUT",
        parse=parse_duration,
        help="idle keep-alive client connections are closed after",
    )
    connect_timeout: float = option(
        DEFAULTS.connect_timeout,
        env="*_CONNECT_TIMEOUT",
        parse=parse_duration,
        help="time to connect to an upstream (502 after)",
    )
    read_timeout: float = option(
        DEFAULTS.read_timeout,
        env="*_READ_TIMEOUT",
        parse=parse_duration,
        help="time an upstream may stay silent (504 after)",
    )
    drain_timeout: float = option(
        20.0,
        env="*_DRAIN_TIMEOUT",
        parse=parse_duration,
        help="after SIGTERM, how long in-flight requests may finish",
    )
    underscores_in_headers: bool = option(
        False,
        env="*_UNDERSCORES_IN_HEADERS",
        parse=parse_bool,
        help="pass request header names with underscores on (else dropped, as nginx's "
        "underscores_in_headers off); framing look-alikes are refused either way",
    )
    proxy_protocol_from: tuple[Network, ...] = option(
        (),
        env="*_PROXY_PROTOCOL_FROM",
        parse=parse_networks,
        metavar="CIDR,...",
        help="peers that must start each connection with a PROXY protocol header (v1 or v2), "
        "whose address is then the client's; from any other peer one is refused",
    )
    access_log: bool = option(
        DEFAULTS.access_log,
        env="*_ACCESS_LOG",
        parse=parse_bool,
        help="one line per request on stdout: nginx's combined format plus rt= ua= us= rid= "
        "(or JSON fields with --log-format json)",
    )
    log_level: str = option(
        "info", env="*_LOG_LEVEL", parse=logs.parse_level, help="debug, info, warning or error"
    )
    log_format: logs.LogFormat = option(
        "text", env="*_LOG_FORMAT", parse=logs.parse_format, help="text or json"
    )

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise OptionError(f"{describe(type(self), 'workers')}: must be at least 1")

    def proxy_settings(
        self,
        *,
        scheme: bytes,
        via_name: str,
        identity_headers: tuple[bytes, ...] = (),
        hsts: bytes = b"",
        retry_non_idempotent: bool = False,
    ) -> ProxySettings:
        """The engine's settings: these options plus what the service decides itself."""
        return ProxySettings(
            max_header_size=self.max_header_size,
            max_body_size=self.max_body_size,
            header_timeout=self.header_timeout,
            body_timeout=self.body_timeout,
            keepalive_timeout=self.keepalive_timeout,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            scheme=scheme,
            trusted_proxies=self.trusted_proxies,
            forwarded=self.forwarded,
            via=f"1.1 {via_name}".encode() if self.via else b"",
            identity_headers=identity_headers,
            hsts=hsts,
            retry_non_idempotent=retry_non_idempotent,
            underscores_in_headers=self.underscores_in_headers,
            proxy_protocol_from=self.proxy_protocol_from,
            access_log=self.access_log,
            access_log_format=self.log_format,
        )
