"""Upstream groups as configured: nginx's `server` lines ("http://server1:80 weight=3
max_fails=1 fail_timeout=10s backup slow_start=30s drain"), and what a group adds around
them: method, health checks, next_upstream conditions, timeouts and outlier ejection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ambassador.balancer import Method
from ambassador.outlier import Outlier
from podkit.options import OptionError, parse_choice, parse_duration
from podkit.proxy.settings import NEXT_ERROR, NEXT_INVALID_HEADER, NEXT_TIMEOUT
from podkit.proxy.upstream import parse_upstream_url


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
    slow_start: float = 0.0
    drain: bool = False

    @property
    def host(self) -> str:
        return parse_upstream_url(self.url)[0]

    @property
    def port(self) -> int:
        return parse_upstream_url(self.url)[1]


_INT_PARAMS = {"weight": 1, "max_fails": 0, "max_conns": 0}  # name → smallest allowed
_FLAGS = ("backup", "down", "drain")
_DURATIONS = ("fail_timeout", "slow_start")


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
        if name in _FLAGS and not sep:
            params[name] = True
        elif name in _INT_PARAMS and sep:
            if not (value.isascii() and value.isdigit()) or int(value) < _INT_PARAMS[name]:
                raise OptionError(
                    f"{url}: {name} must be a whole number >= {_INT_PARAMS[name]}, got {value!r}"
                )
            params[name] = int(value)
        elif name in _DURATIONS and sep:
            try:
                params[name] = parse_duration(value)
            except OptionError as exc:
                raise OptionError(f"{url}: {name}: {exc}") from None
        else:
            raise OptionError(
                f"{url}: unknown server parameter {word!r} (weight=, max_fails=, fail_timeout=, "
                "max_conns=, slow_start=, backup, down, drain)"
            )
    return ServerSpec(url, **params)


def server_item(item: object) -> ServerSpec:
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


# nginx's proxy_next_upstream conditions: the engine's bits, and the statuses.
CONDITIONS = {"error": NEXT_ERROR, "timeout": NEXT_TIMEOUT, "invalid_header": NEXT_INVALID_HEADER}
STATUSES = {"http_500": 500, "http_502": 502, "http_503": 503, "http_504": 504, "http_429": 429}


def parse_next_upstream(text: str) -> frozenset[str]:
    """'error timeout http_503' (spaces or commas), 'off', or with 'non_idempotent'."""
    words = frozenset(text.replace(",", " ").split())
    known = {*CONDITIONS, *STATUSES, "non_idempotent", "off"}
    unknown = sorted(words - known)
    if unknown:
        raise OptionError(
            f"unknown next_upstream condition {unknown[0]!r} ({', '.join(sorted(known))})"
        )
    if "off" in words and len(words) > 1:
        raise OptionError("next_upstream: `off` stands alone")
    return words - {"off"}


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
    # nginx: proxy_next_upstream, _tries, _timeout; proxy_connect/read/send_timeout
    next_upstream: frozenset[str] = frozenset({"error", "timeout"})
    next_upstream_tries: int = 0
    next_upstream_timeout: float = 0.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    outlier: Outlier = field(default_factory=Outlier)
    name: str = "default"

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
        if self.method == "hash" and any(s.slow_start for s in self.servers):
            raise OptionError("slow_start cannot be used with the hash method (as in nginx Plus)")
        if self.health_path and not self.health_path.startswith("/"):
            raise OptionError(f"health path must start with '/', got {self.health_path!r}")

    @property
    def next_upstream_mask(self) -> int:
        return sum(bit for name, bit in CONDITIONS.items() if name in self.next_upstream)

    @property
    def next_upstream_statuses(self) -> frozenset[int]:
        return frozenset(code for name, code in STATUSES.items() if name in self.next_upstream)


GROUP_KEYS = {
    "upstreams",
    "method",
    "hash_key",
    "health",
    "next_upstream",
    "next_upstream_tries",
    "next_upstream_timeout",
    "timeouts",
    "outlier",
}
_OUTLIER_DURATIONS = ("base_ejection_time", "max_ejection_time", "interval")


def _mapping(data: dict[str, Any], key: str, allowed: set[str] | tuple[str, ...]) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise OptionError(f"`{key}` must be a mapping")
    unknown = set(value) - set(allowed)
    if unknown:
        raise OptionError(f"unknown keys under {key}: {sorted(unknown)}")
    return value


def _timeout(timeouts: dict[str, Any], key: str, default: float) -> float:
    try:
        return parse_duration(str(timeouts.get(key, default)))
    except OptionError as exc:
        raise OptionError(f"timeouts: {key}: {exc}") from None


def _outlier(data: dict[str, Any]) -> Outlier:
    names = ("consecutive_5xx", "consecutive_gateway_failure", "max_ejection_percent")
    raw = _mapping(data, "outlier", (*names, *_OUTLIER_DURATIONS))
    values: dict[str, Any] = {k: int(v) for k, v in raw.items() if k in names}
    values |= {k: parse_duration(str(v)) for k, v in raw.items() if k in _OUTLIER_DURATIONS}
    if any(v < 0 for v in values.values()) or values.get("max_ejection_percent", 0) > 100:
        raise OptionError(f"outlier: values out of range: {raw}")
    return Outlier(**values)


def group_from(
    data: dict[str, Any],
    d: dict[str, Any],
    name: str = "default",
    servers: tuple[ServerSpec, ...] | None = None,
) -> UpstreamGroup:
    """A group from its YAML mapping (or the flags' `servers`), the flags' values `d`
    filling what it leaves out."""
    unknown = set(data) - GROUP_KEYS
    if unknown:
        raise OptionError(f"unknown keys {sorted(unknown)}")
    items = data.get("upstreams") or []
    if not isinstance(items, list):
        raise OptionError("`upstreams` must be a list")
    if servers is None:
        servers = tuple(server_item(item) for item in items)
    health = _mapping(data, "health", ("path", "interval", "timeout", "rise", "fall"))
    timeouts = _mapping(data, "timeouts", ("connect", "read", "send"))
    next_upstream = data.get("next_upstream", d.get("next_upstream", "error timeout"))
    if next_upstream is False:  # YAML 1.1 reads a bare `off` as false
        next_upstream = "off"
    elif isinstance(next_upstream, list):
        next_upstream = " ".join("off" if w is False else str(w) for w in next_upstream)
    elif isinstance(next_upstream, frozenset):
        next_upstream = " ".join(sorted(next_upstream)) or "off"
    tries = int(data.get("next_upstream_tries", d.get("next_upstream_tries", 0)))
    if tries < 0:
        raise OptionError(f"next_upstream_tries must be >= 0, got {tries}")
    try:
        return UpstreamGroup(
            servers=servers,
            method=parse_choice("round_robin", "least_conn", "hash")(
                str(data.get("method", d["method"]))
            ),
            hash_key=parse_hash_key(str(data.get("hash_key", d["hash_key"]))),
            health_path=str(health.get("path", d["health_path"])),
            health_interval=parse_duration(str(health.get("interval", d["health_interval"]))),
            health_timeout=parse_duration(str(health.get("timeout", d["health_timeout"]))),
            health_rise=int(health.get("rise", d["health_rise"])),
            health_fall=int(health.get("fall", d["health_fall"])),
            next_upstream=parse_next_upstream(str(next_upstream)),
            next_upstream_tries=tries,
            next_upstream_timeout=parse_duration(
                str(data.get("next_upstream_timeout", d.get("next_upstream_timeout", 0)))
            ),
            connect_timeout=_timeout(timeouts, "connect", d.get("connect_timeout", 5.0)),
            read_timeout=_timeout(timeouts, "read", d.get("read_timeout", 60.0)),
            send_timeout=_timeout(timeouts, "send", d.get("send_timeout", 60.0)),
            outlier=_outlier(data),
            name=name,
        )
    except ValueError as exc:
        raise OptionError(str(exc)) from None
