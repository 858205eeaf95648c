"""The adapter's options: redis_exporter's flags and environment variables, declared once.

This module holds the Redis side (what to scrape and how); WebConfig (web_config.py) the HTTP
side; flag_values.py the parsers both use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adapter.flag_values import (
    parse_csv,
    parse_list,
    parse_namespace,
    parse_redis_addr,
)
from adapter.keys import KeySpec, parse_key_specs
from adapter.web_config import WebConfig
from podkit.options import OptionError, describe, option, parse_bool, parse_duration

PROG = "adapter"
DESCRIPTION = (
    "Redis to Prometheus exporter: the adapter container of a Redis pod. "
    "Flags and environment variables follow redis_exporter's."
)

__all__ = ["DESCRIPTION", "PROG", "AdapterConfig", "parse_redis_addr"]


@dataclass(frozen=True)
class AdapterConfig(WebConfig):
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
        help="the target is a Redis Cluster node: --check-keys/--check-single-keys run on "
        "the masters that own the keys, and /discover-cluster-nodes lists the cluster's nodes",
    )
    is_tile38: bool = option(
        False,
        env="REDIS_EXPORTER_IS_TILE38",
        parse=parse_bool,
        aliases=("-is-tile38",),
        help="accepted and ignored with a warning: Tile38 is not Redis",
    )
    exclude_latency_histogram_metrics: bool = option(
        True,
        env="REDIS_EXPORTER_EXCLUDE_LATENCY_HISTOGRAM_METRICS",
        parse=parse_bool,
        aliases=("-exclude-latency-histogram-metrics",),
        help="leave out commands_latencies_usec (Redis 7's LATENCY HISTOGRAM); set false to "
        "export it, as redis_exporter releases after 1.45 do by default",
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

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.tls_client_key_file) != bool(self.tls_client_cert_file):
            raise OptionError(
                "--tls-client-key-file and --tls-client-cert-file go together: set both or neither"
            )
        for name in (
            "tls_client_key_file",
            "tls_client_cert_file",
            "tls_ca_cert_file",
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
        if self.is_tile38:
            said.append(
                "--is-tile38 (REDIS_EXPORTER_IS_TILE38) is ignored: the adapter exports Redis "
                "metrics only, no Tile38 SERVER stats"
            )
        return said + super().warnings()

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
