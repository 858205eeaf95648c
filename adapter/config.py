"""The adapter's options: redis_exporter's flags and environment variables, declared once."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from adapter.keys import KeySpec, parse_key_specs
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

PROG = "adapter"
DESCRIPTION = (
    "Redis to Prometheus exporter: the adapter container of a Redis pod. "
    "Flags and environment variables follow redis_exporter's."
)


def parse_redis_addr(text: str) -> str:
    """A Redis URL; a bare host:port (redis_exporter accepts one) becomes redis://host:port."""
    value = text.strip()
    if "://" not in value:
        if not value or ":" not in value:
            raise OptionError(
                f"expected redis://host:port, rediss://host:port or unix:///path, got {text!r}"
            )
        value = "redis://" + value
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise OptionError(f"unsupported scheme {scheme!r}: use redis://, rediss:// or unix://")
    try:
        urlsplit(value).port  # noqa: B018 - raises for an unclosed [v6 or a port out of range
    except ValueError as exc:  # the URL itself is not repeated: it may hold a password
        raise OptionError(f"invalid {scheme}:// address: {exc}") from None
    return value


def parse_path(text: str) -> str:
    value = text.strip()
    if not value.startswith("/"):
        raise OptionError(f"expected a path starting with '/', got {text!r}")
    return value


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_csv(text: str) -> tuple[str, ...]:
    """One CSV record, as redis_exporter reads --check-key-groups (a pattern may be quoted
    to hold a comma); empty fields dropped."""
    try:
        (record,) = list(csv.reader([text])) or [[]]
    except (csv.Error, ValueError) as exc:
        raise OptionError(f"expected comma-separated Lua patterns: {exc}") from None
    return tuple(field.strip() for field in record if field.strip())


def parse_namespace(text: str) -> str:
    value = text.strip()
    if not value or not all(c.isalnum() or c == "_" for c in value) or value[0].isdigit():
        raise OptionError(f"a metric namespace is letters, digits and '_', got {text!r}")
    return value


@dataclass(frozen=True)
class AdapterConfig:
    redis_addr: str = option(
        "redis://localhost:6379",
        env="REDIS_ADDR",
        parse=parse_redis_addr,
        aliases=("-redis.addr", "--redis.addr"),
        help="Redis to scrape: redis://host:port, rediss://host:port (TLS) or unix:///path",
    )
    redis_user: str = option(
        "",
        env="REDIS_USER",
        aliases=("-redis.user", "--redis.user"),
        help="user name for Redis ACL authentication (Redis 6+)",
    )
    redis_password: str = option(
        "",
        env="REDIS_PASSWORD",
        secret=True,
        aliases=("-redis.password", "--redis.password"),
        help="password for Redis",
    )
    redis_password_file: str = option(
        "",
        env="REDIS_PASSWORD_FILE",
        aliases=("-redis.password-file", "--redis.password-file"),
        help="file with the password, or redis_exporter's JSON map of Redis URL to password",
    )
    namespace: str = option(
        "redis",
        env="REDIS_EXPORTER_NAMESPACE",
        parse=parse_namespace,
        aliases=("-namespace",),
        help="prefix of every metric name",
    )
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
    check_keys: tuple[KeySpec, ...] = option(
        (),
        env="REDIS_EXPORTER_CHECK_KEYS",
        parse=parse_key_specs,
        aliases=("-check-keys",),
        help="comma-separated key patterns (db3=user:*) to export size and value of, via SCAN",
    )
    check_single_keys: tuple[KeySpec, ...] = option(
        (),
        env="REDIS_EXPORTER_CHECK_SINGLE_KEYS",
        parse=parse_key_specs,
        aliases=("-check-single-keys",),
        help="comma-separated keys (db3=user_count) whose size and value to export, without SCAN",
    )
    check_streams: tuple[KeySpec, ...] = option(
        (),
        env="REDIS_EXPORTER_CHECK_STREAMS",
        parse=parse_key_specs,
        aliases=("-check-streams",),
        help="comma-separated stream patterns (db0=events:*) to export length, groups, "
        "consumers and pending messages of, via SCAN",
    )
    check_single_streams: tuple[KeySpec, ...] = option(
        (),
        env="REDIS_EXPORTER_CHECK_SINGLE_STREAMS",
        parse=parse_key_specs,
        aliases=("-check-single-streams",),
        help="comma-separated streams (db0=events) to export length, groups, consumers and "
        "pending messages of, without SCAN",
    )
    check_key_groups: tuple[str, ...] = option(
        (),
        env="REDIS_EXPORTER_CHECK_KEY_GROUPS",
        parse=parse_csv,
        aliases=("-check-key-groups",),
        help="comma-separated Lua patterns whose captures name a key group; count and memory "
        "of each group per database, via SCAN and MEMORY USAGE",
    )
    max_distinct_key_groups: int = option(
        100,
        env="REDIS_EXPORTER_MAX_DISTINCT_KEY_GROUPS",
        parse=int,
        aliases=("-max-distinct-key-groups",),
        help="most key groups per database reported by memory; the rest are summed as 'overflow'",
    )
    count_keys: tuple[KeySpec, ...] = option(
        (),
        env="REDIS_EXPORTER_COUNT_KEYS",
        parse=parse_key_specs,
        aliases=("-count-keys",),
        help="comma-separated key patterns (db3=sessions:*) to count with SCAN",
    )
    check_keys_batch_size: int = option(
        1000,
        env="REDIS_EXPORTER_CHECK_KEYS_BATCH_SIZE",
        parse=int,
        aliases=("-check-keys-batch-size",),
        help="COUNT hint for each SCAN call of --check-keys and --count-keys",
    )
    script: tuple[str, ...] = option(
        (),
        env="REDIS_EXPORTER_SCRIPT",
        parse=parse_list,
        aliases=("-script",),
        help="comma-separated paths of Lua scripts returning {name, value, ...}; exported as "
        "script_values{key}",
    )
    export_client_list: bool = option(
        False,
        env="REDIS_EXPORTER_EXPORT_CLIENT_LIST",
        parse=parse_bool,
        aliases=("-export-client-list",),
        help="export CLIENT LIST as connected_clients_details, one series per connection",
    )
    export_client_port: bool = option(
        False,
        env="REDIS_EXPORTER_EXPORT_CLIENT_PORT",
        parse=parse_bool,
        aliases=("-export-client-port",),
        help="add the client's port to connected_clients_details (many more series)",
    )
    ping_on_connect: bool = option(
        False,
        env="REDIS_EXPORTER_PING_ON_CONNECT",
        parse=parse_bool,
        aliases=("-ping-on-connect",),
        help="PING Redis at the start of each scrape and export the time it took",
    )
    include_config_metrics: bool = option(
        False,
        env="REDIS_EXPORTER_INCL_CONFIG_METRICS",
        parse=parse_bool,
        aliases=("-include-config-metrics",),
        help="export every CONFIG setting as config_key_value (and config_value if numeric)",
    )
    redact_config_metrics: bool = option(
        True,
        env="REDIS_EXPORTER_REDACT_CONFIG_METRICS",
        parse=parse_bool,
        aliases=("-redact-config-metrics",),
        help="leave passwords (masterauth, requirepass, TLS key passphrases) out of the "
        "config metrics",
    )
    is_cluster: bool = option(
        False,
        env="REDIS_EXPORTER_IS_CLUSTER",
        parse=parse_bool,
        aliases=("-is-cluster",),
        help="accepted; not yet supported: key checks run on the configured node only",
    )
    is_tile38: bool = option(
        False,
        env="REDIS_EXPORTER_IS_TILE38",
        parse=parse_bool,
        aliases=("-is-tile38",),
        help="accepted and ignored with a warning: Tile38 is not Redis",
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
    connection_timeout: float = option(
        15.0,
        env="REDIS_EXPORTER_CONNECTION_TIMEOUT",
        parse=parse_duration,
        aliases=("-connection-timeout",),
        help="timeout for connecting to Redis and for each scrape's replies (e.g. 15s)",
    )
    include_system_metrics: bool = option(
        False,
        env="REDIS_EXPORTER_INCL_SYSTEM_METRICS",
        parse=parse_bool,
        aliases=("-include-system-metrics",),
        help="also export redis_total_system_memory_bytes",
    )
    redis_only_metrics: bool = option(
        False,
        env="REDIS_EXPORTER_REDIS_ONLY_METRICS",
        parse=parse_bool,
        aliases=("-redis-only-metrics",),
        help="export only Redis metrics, not the adapter's own process metrics",
    )
    set_client_name: bool = option(
        True,
        env="REDIS_EXPORTER_SET_CLIENT_NAME",
        parse=parse_bool,
        aliases=("-set-client-name",),
        help="name the adapter's connection 'redis_exporter' (CLIENT SETNAME)",
    )
    config_command: str = option(
        "CONFIG",
        env="REDIS_EXPORTER_CONFIG_COMMAND",
        aliases=("-config-command",),
        help="name of the CONFIG command, where it was renamed",
    )
    tls_client_key_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_CLIENT_KEY_FILE",
        aliases=("-tls-client-key-file",),
        help="client key file for TLS to Redis (with --tls-client-cert-file)",
    )
    tls_client_cert_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_CLIENT_CERT_FILE",
        aliases=("-tls-client-cert-file",),
        help="client certificate file for TLS to Redis",
    )
    tls_ca_cert_file: str = option(
        "",
        env="REDIS_EXPORTER_TLS_CA_CERT_FILE",
        aliases=("-tls-ca-cert-file",),
        help="CA certificate file to verify Redis' TLS certificate",
    )
    skip_tls_verification: bool = option(
        False,
        env="REDIS_EXPORTER_SKIP_TLS_VERIFICATION",
        parse=parse_bool,
        aliases=("-skip-tls-verification",),
        help="do not verify Redis' TLS certificate",
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
        if bool(self.tls_client_key_file) != bool(self.tls_client_cert_file):
            raise OptionError(
                "--tls-client-key-file and --tls-client-cert-file go together: set both or neither"
            )
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
        for name in (
            "tls_client_key_file",
            "tls_client_cert_file",
            "tls_ca_cert_file",
            "tls_server_cert_file",
            "tls_server_key_file",
            "tls_server_ca_cert_file",
            "redis_password_file",
        ):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise OptionError(f"{describe(AdapterConfig, name)}: no such file: {path}")
        if self.check_keys_batch_size < 1:
            raise OptionError("--check-keys-batch-size must be at least 1")
        if self.max_distinct_key_groups < 0:
            raise OptionError("--max-distinct-key-groups cannot be negative")
        for path in self.script:
            if not Path(path).is_file():
                raise OptionError(f"{describe(AdapterConfig, 'script')}: no such file: {path}")

    def warnings(self) -> list[str]:
        """One line for each redis_exporter option that is accepted but does nothing here."""
        said = []
        if self.is_cluster:
            said.append(
                "--is-cluster (REDIS_EXPORTER_IS_CLUSTER) is not supported yet: the adapter "
                "scrapes the configured node only, and key checks see that node's keys"
            )
        if self.is_tile38:
            said.append(
                "--is-tile38 (REDIS_EXPORTER_IS_TILE38) is ignored: the adapter exports Redis "
                "metrics only, no Tile38 SERVER stats"
            )
        if self.basic_auth_username and not self.tls_server_cert_file:
            said.append(
                "--basic-auth-username/--basic-auth-password without --tls-server-cert-file: "
                "scrapers send the password over plain HTTP"
            )
        return said

    @property
    def effective_log_level(self) -> str:
        return "debug" if self.debug else self.log_level

    def password_for(self, url: str) -> str:
        """The password for a target: --redis-password, else the password file.

        redis_exporter's password file is a JSON object of URL → password; a file that is not
        JSON is taken whole as the password (the Kubernetes Secret-as-file habit).
        """
        if self.redis_password:
            return self.redis_password
        if not self.redis_password_file:
            return ""
        text = Path(self.redis_password_file).read_text(encoding="utf-8")
        try:
            mapping = json.loads(text)
        except ValueError:
            return text.rstrip("\r\n")
        if isinstance(mapping, dict):
            return str(mapping.get(url, ""))
        return text.rstrip("\r\n")
