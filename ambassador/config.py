"""The ambassador's options (AMBASSADOR_* variables) and its upstream list, in nginx's
`server` syntax: "http://server1:80 weight=3 max_fails=1 fail_timeout=10s backup"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ambassador.balancer import Method
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

PROG = "ambassador"
DESCRIPTION = (
    "HTTP load balancer with nginx's upstream semantics: the ambassador container, the pod's "
    "way out to (or in from) a set of services."
)


@dataclass(frozen=True)
class ServerSpec:
    """One `server` line of nginx's upstream block."""

    url: str
    weight: int = 1
    max_fails: int = 1
    fail_timeout: float = 10.0
    backup: bool = False
    down: bool = False
    max_conns: int = 0

    @property
    def host(self) -> str:
        return parse_upstream_url(self.url)[0]

    @property
    def port(self) -> int:
        return parse_upstream_url(self.url)[1]


_INT_PARAMS = {"weight": 1, "max_fails": 0, "max_conns": 0}  # name → smallest allowed


def parse_server(text: str) -> ServerSpec:
    """'http://host:port weight=3 max_fails=2 fail_timeout=30s backup down max_conns=100'."""
    words = text.split()
    if not words:
        raise OptionError("an empty upstream")
    url = words[0] if "://" in words[0] or words[0].startswith("unix:") else "http://" + words[0]
    try:
        parse_upstream_url(url)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    params: dict[str, Any] = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if name in ("backup", "down") and not sep:
            params[name] = True
        elif name in _INT_PARAMS and sep:
            if not (value.isascii() and value.isdigit()) or int(value) < _INT_PARAMS[name]:
                raise OptionError(
                    f"{url}: {name} must be a whole number >= {_INT_PARAMS[name]}, got {value!r}"
                )
            params[name] = int(value)
        elif name == "fail_timeout" and sep:
            try:
                params[name] = parse_duration(value)
            except OptionError as exc:
                raise OptionError(f"{url}: fail_timeout: {exc}") from None
        else:
            raise OptionError(
                f"{url}: unknown server parameter {word!r} (weight=, max_fails=, fail_timeout=, "
                "max_conns=, backup, down)"
            )
    return ServerSpec(url, **params)


def _server_item(item: object) -> ServerSpec:
    """A YAML upstream item: a string in nginx syntax, or a mapping with `url`."""
    if isinstance(item, str):
        return parse_server(item)
    if isinstance(item, dict) and "url" in item:
        words = [str(item["url"])]
        for key, value in item.items():
            if key == "url":
                continue
            if value is True:
                words.append(str(key))
            elif value is not False:
                words.append(f"{key}={value}")
        return parse_server(" ".join(words))
    raise OptionError(f"an upstream is a string or a mapping with `url`: {item!r}")


def parse_hash_key(text: str) -> str:
    value = text.strip()
    kind, _, name = value.partition(":")
    if value == "ip" or (kind in ("header", "cookie") and name):
        return value
    raise OptionError(f"expected ip, header:NAME or cookie:NAME, got {text!r}")


@dataclass(frozen=True)
class UpstreamGroup:
    """What can change at run time: the servers and how to choose among them."""

    servers: tuple[ServerSpec, ...]
    method: Method = "round_robin"
    hash_key: str = "ip"
    health_path: str = ""
    health_interval: float = 5.0
    health_timeout: float = 2.0
    health_rise: int = 2
    health_fall: int = 3

    def __post_init__(self) -> None:
        if not self.servers:
            raise OptionError(
                "no upstream servers: give --upstream, AMBASSADOR_UPSTREAMS or "
                "--config with an `upstreams:` list"
            )
        if all(s.backup for s in self.servers):
            raise OptionError("every upstream is a backup: at least one must not be")
        if self.method == "hash" and any(s.backup for s in self.servers):
            raise OptionError("backup servers cannot be used with the hash method (as in nginx)")
        if self.health_path and not self.health_path.startswith("/"):
            raise OptionError(f"health path must start with '/', got {self.health_path!r}")


def load_group(path: str, defaults: dict[str, Any]) -> UpstreamGroup:
    """An UpstreamGroup from a YAML file (the --config file, a ConfigMap in Kubernetes)."""
    import yaml  # only with --config: a few MB the flag-configured ambassador does not carry

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise OptionError(f"{path}: {where}{problem}") from None
    if not isinstance(data, dict):
        raise OptionError(f"{path}: expected a mapping with an `upstreams:` list")
    unknown = set(data) - {"upstreams", "method", "hash_key", "health"}
    if unknown:
        raise OptionError(f"{path}: unknown keys {sorted(unknown)}")
    items = data.get("upstreams") or []
    if not isinstance(items, list):
        raise OptionError(f"{path}: `upstreams` must be a list")
    servers = []
    for item in items:
        try:
            servers.append(_server_item(item))
        except OptionError as exc:
            raise OptionError(f"{path}: {exc}") from None
    health = data.get("health") or {}
    if not isinstance(health, dict):
        raise OptionError(f"{path}: `health` must be a mapping")
    unknown = set(health) - {"path", "interval", "timeout", "rise", "fall"}
    if unknown:
        raise OptionError(f"{path}: unknown keys under health: {sorted(unknown)}")
    d = defaults
    try:
        return UpstreamGroup(
            servers=tuple(servers),
            method=parse_choice("round_robin", "least_conn", "hash")(
                str(data.get("method", d["method"]))
            ),
            hash_key=parse_hash_key(str(data.get("hash_key", d["hash_key"]))),
            health_path=str(health.get("path", d["health_path"])),
            health_interval=parse_duration(str(health.get("interval", d["health_interval"]))),
            health_timeout=parse_duration(str(health.get("timeout", d["health_timeout"]))),
            health_rise=int(health.get("rise", d["health_rise"])),
            health_fall=int(health.get("fall", d["health_fall"])),
        )
    except (OptionError, ValueError) as exc:
        raise OptionError(f"{path}: {exc}") from None


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
    upstream: tuple[ServerSpec, ...] = option(
        (),
        env="AMBASSADOR_UPSTREAMS",
        parse=parse_server,
        multiple=True,
        metavar='"URL [weight=N] [max_fails=N] [fail_timeout=T] [backup] [down] [max_conns=N]"',
        help="an upstream server, nginx style; the variable takes one per line or comma",
    )
    config: str = option(
        "",
        env="AMBASSADOR_CONFIG",
        help="YAML file with `upstreams:` (and method, hash_key, health); reloaded on change",
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
        help="also retry POST/PATCH on another upstream (may send them twice)",
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
        self.group()  # every check of the upstream list, at startup

    def group(self) -> UpstreamGroup:
        """The upstream group from the flags, or (when given) from the --config file."""
        defaults: dict[str, Any] = {
            "method": self.method,
            "hash_key": self.hash_key,
            "health_path": self.health_path,
            "health_interval": self.health_interval,
            "health_timeout": self.health_timeout,
            "health_rise": self.health_rise,
            "health_fall": self.health_fall,
        }
        if self.config:
            return load_group(self.config, defaults)
        return UpstreamGroup(servers=self.upstream, **defaults)
