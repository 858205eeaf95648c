"""The ambassador's options (AMBASSADOR_* variables): its upstream list in nginx's `server`
syntax (ambassador.groups), or a --config file with groups and routes (ambassador.routes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ambassador.balancer import Method
from ambassador.groups import (
    ServerSpec,
    UpstreamGroup,
    group_from,
    parse_hash_key,
    parse_next_upstream,
    parse_server,
)
from ambassador.routes import Layout, load_layout
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

__all__ = ["AmbassadorConfig", "ServerSpec", "UpstreamGroup", "load_group", "parse_server"]

PROG = "ambassador"
DESCRIPTION = (
    "HTTP (or, with --mode tcp, TCP) load balancer with nginx's upstream semantics: the "
    "ambassador container, the pod's way out to (or in from) a set of services."
)


Mode = Literal["http", "tcp"]


def load_group(path: str, defaults: dict[str, Any]) -> UpstreamGroup:
    """The default group of a --config file (its top level)."""
    return load_layout(path, defaults).default


@dataclass(frozen=True)
class AmbassadorConfig(ProxyOptions):
    ENV_PREFIX: ClassVar[str] = "AMBASSADOR"

    listen: tuple[str, int] = option(
        ("0.0.0.0", 8080),
        env="AMBASSADOR_LISTEN",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="address for client connections",
    )
    mode: Mode = option(
        "http",
        env="AMBASSADOR_MODE",
        parse=parse_choice("http", "tcp"),
        help="http: an HTTP reverse proxy; tcp: balance raw TCP connections (nginx's stream "
        "module, HAProxy's mode tcp), with TCP connect health checks every --health-interval",
    )
    upstream: tuple[ServerSpec, ...] = option(
        (),
        env="AMBASSADOR_UPSTREAMS",
        parse=parse_server,
        multiple=True,
        metavar='"URL [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [slow_start=T] '
        '[backup] [down] [drain]"',
        help="an upstream server, nginx style; the variable takes one per line or comma",
    )
    config: str = option(
        "",
        env="AMBASSADOR_CONFIG",
        help="YAML file with `upstreams:` (and method, health, next_upstream, timeouts, "
        "outlier, groups, routes); reloaded on change",
    )
    method: Method = option(
        "round_robin",
        env="AMBASSADOR_METHOD",
        parse=parse_choice("round_robin", "least_conn", "hash"),
        help="round_robin (nginx's smooth weighted), least_conn, or hash (consistent)",
    )
    hash_key: str = option(
        "ip",
        env="AMBASSADOR_HASH_KEY",
        parse=parse_hash_key,
        help="for --method hash: ip, header:NAME or cookie:NAME",
    )
    next_upstream: frozenset[str] = option(
        frozenset({"error", "timeout"}),
        env="AMBASSADOR_NEXT_UPSTREAM",
        parse=parse_next_upstream,
        metavar="CONDITIONS",
        help="when a request goes to the next upstream, as nginx's proxy_next_upstream: error, "
        "timeout, invalid_header, http_500, http_502, http_503, http_504, http_429, "
        "non_idempotent, or off",
    )
    next_upstream_tries: int = option(
        0,
        env="AMBASSADOR_NEXT_UPSTREAM_TRIES",
        parse=int,
        help="most upstreams one request may try (0: each once)",
    )
    next_upstream_timeout: float = option(
        0.0,
        env="AMBASSADOR_NEXT_UPSTREAM_TIMEOUT",
        parse=parse_duration,
        help="no new try after this long since the request (0: no limit)",
    )
    next_upstream_non_idempotent: bool = option(
        False,
        env="AMBASSADOR_NEXT_UPSTREAM_NON_IDEMPOTENT",
        parse=parse_bool,
        help="also retry POST/PATCH on another upstream (may send them twice); as "
        "non_idempotent in --next-upstream",
    )
    send_timeout: float = option(
        60.0,
        env="AMBASSADOR_SEND_TIMEOUT",
        parse=parse_duration,
        help="time an upstream may take no part of the request (504 after)",
    )
    admin_token_file: str = option(
        "",
        env="AMBASSADOR_ADMIN_TOKEN_FILE",
        help="file with a token that admin-port writes from other than loopback must carry "
        "(Authorization: Bearer TOKEN); without it, only loopback may write",
    )
    health_path: str = option(
        "",
        env="AMBASSADOR_HEALTH_PATH",
        help="active health checks: GET this path on every upstream",
    )
    health_interval: float = option(
        5.0,
        env="AMBASSADOR_HEALTH_INTERVAL",
        parse=parse_duration,
        help="time between health checks",
    )
    health_timeout: float = option(
        2.0,
        env="AMBASSADOR_HEALTH_TIMEOUT",
        parse=parse_duration,
        help="a check slower than this fails",
    )
    health_rise: int = option(
        2,
        env="AMBASSADOR_HEALTH_RISE",
        parse=int,
        help="passed checks that bring a down upstream back",
    )
    health_fall: int = option(
        3, env="AMBASSADOR_HEALTH_FALL", parse=int, help="failed checks that take an upstream out"
    )
    resolve_interval: float = option(
        10.0,
        env="AMBASSADOR_RESOLVE_INTERVAL",
        parse=parse_duration,
        help="how often upstream host names are resolved again (0: only at start)",
    )
    config_check_interval: float = option(
        2.0,
        env="AMBASSADOR_CONFIG_CHECK_INTERVAL",
        parse=parse_duration,
        help="how often --config is checked for changes (0: never; SIGHUP reloads at once)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.config and not Path(self.config).is_file():
            raise OptionError(
                f"{describe(AmbassadorConfig, 'config')}: no such file: {self.config}"
            )
        if self.config and self.upstream:
            raise OptionError(
                "give the upstreams either with --upstream/AMBASSADOR_UPSTREAMS "
                "or in --config, not both"
            )
        if self.admin_token_file and not self.admin_token():
            raise OptionError(
                f"{describe(AmbassadorConfig, 'admin_token_file')}: "
                f"no token in {self.admin_token_file}"
            )
        if self.next_upstream_tries < 0:
            raise OptionError(f"{describe(AmbassadorConfig, 'next_upstream_tries')}: must be >= 0")
        self.layout()  # every check of the upstream list, at startup

    def check_tcp(self, layout: Layout) -> Layout:
        """In tcp mode, what only HTTP has is refused: routes and groups, a hash key other
        than the client's address, a health path, statuses to fail over on."""
        if self.mode != "tcp":
            return layout
        group = layout.default
        problems = [
            "groups and routes are HTTP's (they match the request)"
            if layout.routes or len(layout.groups) > 1
            else "",
            "hash_key: only ip (the client's address)" if group.hash_key != "ip" else "",
            "the health check is a TCP connect: no health path" if group.health_path else "",
            "next_upstream: only error and timeout (or off)"
            if group.next_upstream_statuses
            else "",
        ]
        problem = next((p for p in problems if p), "")
        if problem:
            raise OptionError(f"{describe(AmbassadorConfig, 'mode')} tcp: {problem}")
        return layout

    def admin_token(self) -> str:
        """The admin token, read when needed (a Secret's file may be rotated); "" for none."""
        try:
            return Path(self.admin_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OptionError(f"{describe(AmbassadorConfig, 'admin_token_file')}: {exc}") from None

    def group(self) -> UpstreamGroup:
        """The default upstream group (all of it, without --config's groups and routes)."""
        return self.layout().default

    def layout(self) -> Layout:
        """The groups and routes: from the flags, or (when given) from the --config file."""
        defaults: dict[str, Any] = {
            "method": self.method,
            "hash_key": self.hash_key,
            "health_path": self.health_path,
            "health_interval": self.health_interval,
            "health_timeout": self.health_timeout,
            "health_rise": self.health_rise,
            "health_fall": self.health_fall,
            "next_upstream": self.next_upstream
            | ({"non_idempotent"} if self.next_upstream_non_idempotent else set()),
            "next_upstream_tries": self.next_upstream_tries,
            "next_upstream_timeout": self.next_upstream_timeout,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "send_timeout": self.send_timeout,
        }
        if self.config:
            return self.check_tcp(load_layout(self.config, defaults))
        return self.check_tcp(
            Layout({"default": group_from({"upstreams": []}, defaults, servers=self.upstream)})
        )
