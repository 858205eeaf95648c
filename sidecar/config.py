"""The sidecar's options, declared once: flags and SIDECAR_* environment variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_host_port,
)
from podkit.proxy.options import ProxyOptions
from podkit.proxy.upstream import parse_upstream_url
from sidecar.identity import HEADER_FORMATS, HeaderFormat

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


def parse_upstream(text: str) -> str:
    value = text.strip()
    try:
        parse_upstream_url(value)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    return value


def parse_optional_address(text: str) -> tuple[str, int] | None:
    return parse_host_port()(text) if text.strip() else None


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


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name


def parse_header_name(text: str) -> str:
    value = text.strip()
    if not _TOKEN.fullmatch(value):
        raise OptionError(f"expected a header name, got {text!r}")
    return value


def parse_tls_version(text: str) -> str:
    value = text.strip().lower().removeprefix("tlsv").removeprefix("tls")
    if value not in ("1.2", "1.3"):
        raise OptionError(f"expected 1.2 or 1.3, got {text!r}")
    return value


@dataclass(frozen=True)
class SidecarConfig(ProxyOptions):
    ENV_PREFIX: ClassVar[str] = "SIDECAR"

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
        help="CA bundle to verify client certificates (mutual TLS); reloaded when the file changes",
    )
    client_auth: ClientAuth = option(
        "require",
        env="SIDECAR_CLIENT_AUTH",
        parse=parse_choice("require", "optional"),
        help="with --client-ca-file: require a client certificate, or verify one if sent",
    )
    client_cert_header: HeaderFormat = option(
        "xfcc",
        env="SIDECAR_CLIENT_CERT_HEADER",
        parse=parse_choice(*HEADER_FORMATS),
        help="how the verified client certificate goes upstream: xfcc (Envoy's "
        "X-Forwarded-Client-Cert), rfc9440 (Client-Cert, Client-Cert-Chain) or subject "
        "(--client-subject-header only); every one of these a client sends is removed",
    )
    client_subject_header: str = option(
        "X-Client-Cert-Subject",
        env="SIDECAR_CLIENT_SUBJECT_HEADER",
        parse=parse_header_name,
        help="with --client-cert-header subject: the header carrying the verified client "
        "certificate's RFC 4514 subject (always removed from what clients send)",
    )
    allow_cn: tuple[str, ...] = option(
        (),
        env="SIDECAR_ALLOW_CN",
        multiple=True,
        metavar="CN",
        help="admit client certificates with this subject CN (any --allow-* match admits; "
        "none: every verified certificate)",
    )
    allow_ou: tuple[str, ...] = option(
        (),
        env="SIDECAR_ALLOW_OU",
        multiple=True,
        metavar="OU",
        help="admit client certificates with this subject OU (as --allow-cn)",
    )
    allow_dns: tuple[str, ...] = option(
        (),
        env="SIDECAR_ALLOW_DNS",
        multiple=True,
        metavar="NAME",
        help="admit client certificates with this DNS subjectAltName (as --allow-cn)",
    )
    allow_uri: tuple[str, ...] = option(
        (),
        env="SIDECAR_ALLOW_URI",
        multiple=True,
        metavar="URI",
        help="admit client certificates with this URI subjectAltName, e.g. a SPIFFE ID "
        "spiffe://domain/path (as --allow-cn)",
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
    send_proxy_v2: bool = option(
        False,
        env="SIDECAR_SEND_PROXY_V2",
        parse=parse_bool,
        help="with --mode tcp: start each upstream connection with a PROXY protocol v2 header "
        "(the client's address; TLS version, cipher and client CN), as HAProxy's send-proxy-v2",
    )
    cert_check_interval: float = option(
        2.0,
        env="SIDECAR_CERT_CHECK_INTERVAL",
        parse=parse_duration,
        help="how often the certificate files (and the client CA bundle) are checked for changes",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.plain and not (self.cert_file and self.key_file):
            raise OptionError(
                f"TLS needs {describe(SidecarConfig, 'cert_file')} and "
                f"{describe(SidecarConfig, 'key_file')} (or --plain for plain HTTP)"
            )
        if self.send_proxy_v2 and self.mode != "tcp":
            raise OptionError(
                f"{describe(SidecarConfig, 'send_proxy_v2')} needs --mode tcp (an HTTP "
                "upstream gets X-Forwarded-For)"
            )
        allows = ("allow_cn", "allow_ou", "allow_dns", "allow_uri")
        given = [name for name in allows if getattr(self, name)]
        if given and (self.plain or not self.client_ca_file):
            raise OptionError(
                f"{describe(SidecarConfig, given[0])} needs "
                f"{describe(SidecarConfig, 'client_ca_file')} (client certificates over TLS)"
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
