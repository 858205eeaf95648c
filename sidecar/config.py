"""The sidecar's options, declared once: flags and SIDECAR_* environment variables."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from podkit import logs
from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_duration,
    parse_host_port,
)
from podkit.proxy.settings import Network
from podkit.proxy.upstream import parse_upstream_url

PROG = "sidecar"
DESCRIPTION = (
    "TLS-terminating reverse proxy: the sidecar container in front of a pod's main web container."
)
Mode = Literal["http", "tcp"]
ClientAuth = Literal["require", "optional"]
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


def parse_size(text: str) -> int:
    """Bytes from '8192', '16k', '1m', '2g' (nginx's size syntax)."""
    value = text.strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(value[-1:], 1)
    digits = value[:-1] if scale != 1 else value
    if not digits.isdigit():
        raise OptionError(f"expected a size such as 8192, 16k or 1m, got {text!r}")
    return int(digits) * scale


def parse_upstream(text: str) -> str:
    value = text.strip()
    try:
        parse_upstream_url(value)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    return value


def parse_optional_address(text: str) -> tuple[str, int] | None:
    return parse_host_port()(text) if text.strip() else None


def parse_networks(text: str) -> tuple[Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def parse_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """'cert.pem:key.pem,cert2.pem:key2.pem' → ((cert, key), ...)."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        cert, sep, key = part.partition(":")
        if not sep or not cert or not key:
            raise OptionError(f"expected CERT:KEY, got {part!r}")
        pairs.append((cert, key))
    return tuple(pairs)


def parse_choice(*choices: str):  # type: ignore[no-untyped-def]
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise OptionError(f"expected one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


def parse_tls_version(text: str) -> str:
    value = text.strip().lower().removeprefix("tlsv").removeprefix("tls")
    if value not in ("1.2", "1.3"):
        raise OptionError(f"expected 1.2 or 1.3, got {text!r}")
    return value


@dataclass(frozen=True)
class SidecarConfig:
    listen: tuple[str, int] = option(
        ("0.0.0.0", 8443),
        env="SIDECAR_LISTEN",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="address for client connections (TLS)",
    )
    upstream: str = option(
        "http://127.0.0.1:8080",
        env="SIDECAR_UPSTREAM",
        parse=parse_upstream,
        help="the main container: http://host:port or unix:/path/to.sock",
    )
    mode: Mode = option(
        "http",
        env="SIDECAR_MODE",
        parse=parse_choice("http", "tcp"),
        help="http: an HTTP reverse proxy; tcp: TLS termination only, bytes passed as they are",
    )
    cert_file: str = option(
        "", env="SIDECAR_CERT_FILE", help="PEM certificate chain (reloaded when the file changes)"
    )
    key_file: str = option("", env="SIDECAR_KEY_FILE", help="PEM private key")
    extra_certs: tuple[tuple[str, str], ...] = option(
        (),
        env="SIDECAR_EXTRA_CERTS",
        parse=parse_pairs,
        metavar="CERT:KEY,...",
        help="more certificate/key pairs, chosen by SNI from their DNS names",
    )
    client_ca_file: str = option(
        "",
        env="SIDECAR_CLIENT_CA_FILE",
        help="CA bundle to verify client certificates (mutual TLS)",
    )
    client_auth: ClientAuth = option(
        "require",
        env="SIDECAR_CLIENT_AUTH",
        parse=parse_choice("require", "optional"),
        help="with --client-ca-file: require a client certificate, or verify one if sent",
    )
    client_subject_header: str = option(
        "X-Client-Cert-Subject",
        env="SIDECAR_CLIENT_SUBJECT_HEADER",
        help="request header carrying the verified client certificate's subject "
        "(always removed from what clients send)",
    )
    min_tls_version: str = option(
        "1.2",
        env="SIDECAR_MIN_TLS_VERSION",
        parse=parse_tls_version,
        help="lowest TLS version: 1.2 or 1.3",
    )
    ciphers: str = option(
        MODERN_CIPHERS,
        env="SIDECAR_CIPHERS",
        help="OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are fixed)",
    )
    plain: bool = option(
        False,
        env="SIDECAR_PLAIN",
        parse=parse_bool,
        help="serve plain HTTP on --listen (behind another TLS terminator)",
    )
    redirect_listen: tuple[str, int] | None = option(
        None,
        env="SIDECAR_REDIRECT_LISTEN",
        parse=parse_optional_address,
        metavar="HOST:PORT",
        help="also answer plain HTTP here with 308 redirects to https",
    )
    redirect_https_port: int = option(
        443, env="SIDECAR_REDIRECT_HTTPS_PORT", parse=int, help="the https port redirects point to"
    )
    hsts: int = option(
        0,
        env="SIDECAR_HSTS",
        parse=int,
        help="Strict-Transport-Security max-age in seconds (0: off)",
    )
    admin_listen: tuple[str, int] = option(
        ("0.0.0.0", 9000),
        env="SIDECAR_ADMIN_LISTEN",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="/healthz, /readyz and /metrics",
    )
    workers: int = option(
        1, env="SIDECAR_WORKERS", parse=int, help="processes sharing the port with SO_REUSEPORT"
    )
    trusted_proxies: tuple[Network, ...] = option(
        (),
        env="SIDECAR_TRUSTED_PROXIES",
        parse=parse_networks,
        metavar="CIDR,...",
        help="peers whose X-Forwarded-For/-Proto/-Host are kept and appended to",
    )
    forwarded: bool = option(
        False,
        env="SIDECAR_FORWARDED",
        parse=parse_bool,
        help="also send an RFC 7239 Forwarded header",
    )
    via: bool = option(
        False,
        env="SIDECAR_VIA",
        parse=parse_bool,
        help="add 'Via: 1.1 sidecar' to requests and responses",
    )
    max_header_size: int = option(
        16384,
        env="SIDECAR_MAX_HEADER_SIZE",
        parse=parse_size,
        help="largest request head (431 above)",
    )
    max_body_size: int = option(
        1 << 20,
        env="SIDECAR_MAX_BODY_SIZE",
        parse=parse_size,
        help="largest request body, 0 for no limit (413 above)",
    )
    header_timeout: float = option(
        10.0,
        env="SIDECAR_HEADER_TIMEOUT",
        parse=parse_duration,
        help="time to receive a request head (408 after)",
    )
    body_timeout: float = option(
        60.0,
        env="SIDECAR_BODY_TIMEOUT",
        parse=parse_duration,
        help="time between reads of a request body (408 after)",
    )
    keepalive_timeout: float = option(
        75.0,
        env="SIDECAR_KEEPALIVE_TIMEOUT",
        parse=parse_duration,
        help="idle keep-alive client connections are closed after",
    )
    connect_timeout: float = option(
        5.0,
        env="SIDECAR_CONNECT_TIMEOUT",
        parse=parse_duration,
        help="time to connect to the upstream (502 after)",
    )
    read_timeout: float = option(
        60.0,
        env="SIDECAR_READ_TIMEOUT",
        parse=parse_duration,
        help="time the upstream may stay silent (504 after)",
    )
    drain_timeout: float = option(
        20.0,
        env="SIDECAR_DRAIN_TIMEOUT",
        parse=parse_duration,
        help="after SIGTERM, how long in-flight requests may finish",
    )
    cert_check_interval: float = option(
        2.0,
        env="SIDECAR_CERT_CHECK_INTERVAL",
        parse=parse_duration,
        help="how often the certificate files are checked for changes",
    )
    access_log: bool = option(
        False, env="SIDECAR_ACCESS_LOG", parse=parse_bool, help="log every request as a JSON line"
    )
    log_level: str = option(
        "info",
        env="SIDECAR_LOG_LEVEL",
        parse=logs.parse_level,
        help="debug, info, warning or error",
    )
    log_format: logs.LogFormat = option(
        "text", env="SIDECAR_LOG_FORMAT", parse=logs.parse_format, help="text or json"
    )

    def __post_init__(self) -> None:
        if not self.plain and not (self.cert_file and self.key_file):
            raise OptionError(
                f"TLS needs {describe(SidecarConfig, 'cert_file')} and "
                f"{describe(SidecarConfig, 'key_file')} (or --plain for plain HTTP)"
            )
        files = [
            ("cert_file", self.cert_file),
            ("key_file", self.key_file),
            ("client_ca_file", self.client_ca_file),
        ]
        files += [("extra_certs", p) for pair in self.extra_certs for p in pair]
        for name, path in files:
            if path and not Path(path).is_file():
                raise OptionError(f"{describe(SidecarConfig, name)}: no such file: {path}")
        if self.workers < 1:
            raise OptionError(f"{describe(SidecarConfig, 'workers')}: must be at least 1")
