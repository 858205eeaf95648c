"""The adapter's HTTP side, declared once: where /metrics is served, TLS and basic auth on
that port, which /scrape targets are allowed, logging and shutdown.

AdapterConfig (config.py) adds the Redis side; both are one set of flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapter.flag_values import parse_list, parse_path
from adapter.tls import RELOAD_INTERVAL, parse_tls_version
from podkit import logs
from podkit.lifecycle import DEFAULT_SHUTDOWN_TIMEOUT
from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_duration,
    parse_host_port,
)


@dataclass(frozen=True)
class WebConfig:
    web_listen_address: tuple[str, int] = option(
        ("0.0.0.0", 9121),
        env="REDIS_EXPORTER_WEB_LISTEN_ADDRESS",
        parse=parse_host_port(),
        aliases=("-web.listen-address", "--web.listen-address"),
        metavar="HOST:PORT",
        help="address to serve metrics on",
    )
    web_telemetry_path: str = option(
        "/metrics",
        env="REDIS_EXPORTER_WEB_TELEMETRY_PATH",
        parse=parse_path,
        aliases=("-web.telemetry-path", "--web.telemetry-path"),
        help="path under which to expose metrics",
    )
    tls_server_cert_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_SERVER_CERT_FILE",
        aliases=("-tls-server-cert-file",),
        help="certificate (PEM) for TLS on the metrics port, with --tls-server-key-file; "
        "reloaded when the file changes",
    )
    tls_server_key_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_SERVER_KEY_FILE",
        aliases=("-tls-server-key-file",),
        help="private key (PEM) of --tls-server-cert-file",
    )
    tls_server_ca_cert_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_SERVER_CA_CERT_FILE",
        aliases=("-tls-server-ca-cert-file",),
        help="CA bundle (PEM): scrapers must present a client certificate it signed",
    )
    tls_server_min_version: str = option(
        "TLS1.2",
        env="REDIS_EXPORTER_TLS_SERVER_MIN_VERSION",
        parse=parse_tls_version,
        aliases=("-tls-server-min-version",),
        help="lowest TLS version the metrics port accepts: TLS1.0, TLS1.1, TLS1.2 or TLS1.3",
    )
    tls_server_cert_check_interval: float = option(
        RELOAD_INTERVAL,
        env="REDIS_EXPORTER_TLS_SERVER_CERT_CHECK_INTERVAL",
        parse=parse_duration,
        help="how often the --tls-server-* files are checked for changes",
    )
    basic_auth_username: str = option(
        "",
        env="REDIS_EXPORTER_BASIC_AUTH_USERNAME",
        aliases=("-basic-auth-username",),
        help="user name scrapers must send (HTTP basic auth), with --basic-auth-password",
    )
    basic_auth_password: str = option(
        "",
        env="REDIS_EXPORTER_BASIC_AUTH_PASSWORD",
        secret=True,
        aliases=("-basic-auth-password",),
        help="password scrapers must send (HTTP basic auth), with --basic-auth-username",
    )
    scrape_allow: tuple[str, ...] = option(
        (),
        env="REDIS_EXPORTER_SCRAPE_ALLOW",
        parse=parse_list,
        help="comma-separated shell patterns of targets /scrape may reach "
        "(e.g. redis://redis-*:6379); empty: only --redis-addr",
    )
    log_format: logs.LogFormat = option(
        "text",
        env="REDIS_EXPORTER_LOG_FORMAT",
        parse=logs.parse_format,
        aliases=("-log-format",),
        help="log format: text (redis_exporter's 'txt') or json",
    )
    log_level: str = option(
        "info",
        env="REDIS_EXPORTER_LOG_LEVEL",
        parse=logs.parse_level,
        help="log level: debug, info, warning or error",
    )
    debug: bool = option(
        False,
        env="REDIS_EXPORTER_DEBUG",
        parse=parse_bool,
        aliases=("-debug",),
        help="debug logging (same as --log-level debug)",
    )
    shutdown_timeout: float = option(
        DEFAULT_SHUTDOWN_TIMEOUT,
        env="REDIS_EXPORTER_SHUTDOWN_TIMEOUT",
        parse=parse_duration,
        help="how long in-flight scrapes may finish after SIGTERM",
    )

    def __post_init__(self) -> None:
        if bool(self.tls_server_cert_file) != bool(self.tls_server_key_file):
            raise OptionError(
                "--tls-server-cert-file and --tls-server-key-file go together: "
                "set both (TLS on the metrics port) or neither"
            )
        if self.tls_server_ca_cert_file and not self.tls_server_cert_file:
            raise OptionError(
                "--tls-server-ca-cert-file needs --tls-server-cert-file and "
                "--tls-server-key-file: client certificates are checked only over TLS"
            )
        if bool(self.basic_auth_username) != bool(self.basic_auth_password):
            raise OptionError(
                "--basic-auth-username and --basic-auth-password go together: set both or neither"
            )
        for name in ("tls_server_cert_file", "tls_server_key_file", "tls_server_ca_cert_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise OptionError(f"{describe(type(self), name)}: no such file: {path}")

    def warnings(self) -> list[str]:
        """One line for each setting that works but deserves a word at startup."""
        said = []
        if self.basic_auth_username and not self.tls_server_cert_file:
            said.append(
                "--basic-auth-username/--basic-auth-password without --tls-server-cert-file: "
                "scrapers send the password over plain HTTP"
            )
        return said

    @property
    def effective_log_level(self) -> str:
        return "debug" if self.debug else self.log_level
