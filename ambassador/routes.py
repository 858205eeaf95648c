"""Routes: which upstream group a request goes to, by host, path prefix, a header or a
cookie (nginx: `server_name` + `location` + `map`; Envoy: route matches; HAProxy: ACLs with
`use_backend`). The first route whose conditions all hold wins; no route, the default group.
The --config file holds the groups and routes; the flags alone make the default group."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from ambassador.groups import GROUP_KEYS, UpstreamGroup, group_from
from podkit.options import OptionError
from podkit.proxy.head import RequestHead

ROUTE_KEYS = {"group", "host", "path_prefix", "header", "cookie"}


@dataclass(frozen=True)
class Route:
    group: str
    host: bytes = b""  # lower case, no port; "*.example.com" matches its subdomains
    path_prefix: bytes = b""
    header: tuple[bytes, bytes | None] | None = None  # lower-case name; None: present
    cookie: tuple[str, str | None] | None = None

    def matches(self, head: RequestHead) -> bool:
        if self.host:
            host = head.host.lower() if head.host else b""
            if host.rfind(b":") > host.rfind(b"]"):
                host = host[: host.rfind(b":")]
            if self.host.startswith(b"*."):
                if not host.endswith(self.host[1:]):
                    return False
            elif host != self.host:
                return False
        if self.path_prefix and not head.url.startswith(self.path_prefix):
            return False
        if self.header is not None:
            name, wanted = self.header
            value = head.header(name)
            if value is None or (wanted is not None and value != wanted):
                return False
        if self.cookie is not None:
            found = cookie_value(head, self.cookie[0])
            if found is None or (self.cookie[1] is not None and found != self.cookie[1]):
                return False
        return True


def cookie_value(head: RequestHead, name: str) -> str | None:
    for n, v in head.headers:
        if n.lower() == b"cookie":
            try:
                morsel = SimpleCookie(v.decode("latin-1")).get(name)
            except CookieError:
                continue
            if morsel is not None:
                return morsel.value
    return None


def _name_value(raw: object, what: str) -> tuple[str, str | None]:
    """`{name: X-Canary, value: always}`, or "X-Canary: always", or "X-Canary" (present)."""
    if isinstance(raw, dict):
        if set(raw) - {"name", "value"} or "name" not in raw:
            raise OptionError(f"{what}: expected name (and value), got {raw}")
        value = raw.get("value")
        return str(raw["name"]), None if value is None else str(value)
    if isinstance(raw, str) and raw.strip():
        name, sep, value = raw.partition(":" if what == "header" else "=")
        return name.strip(), value.strip() if sep else None
    raise OptionError(f"{what}: expected a name or a mapping, got {raw!r}")


def parse_route(raw: object, groups: dict[str, UpstreamGroup]) -> Route:
    if not isinstance(raw, dict):
        raise OptionError(f"a route is a mapping, got {raw!r}")
    unknown = set(raw) - ROUTE_KEYS
    if unknown:
        raise OptionError(f"unknown keys in a route: {sorted(unknown)}")
    group = str(raw.get("group", ""))
    if group not in groups:
        raise OptionError(f"a route names no known group: {group!r} (known: {sorted(groups)})")
    if len(raw) == 1:
        raise OptionError(f"a route to {group!r} has no condition (host, path_prefix, ...)")
    prefix = str(raw.get("path_prefix", ""))
    if prefix and not prefix.startswith("/"):
        raise OptionError(f"path_prefix must start with '/', got {prefix!r}")
    header = cookie = None
    if "header" in raw:
        name, value = _name_value(raw["header"], "header")
        header = (name.lower().encode("latin-1"), None if value is None else value.encode())
    if "cookie" in raw:
        cookie = _name_value(raw["cookie"], "cookie")
    return Route(
        group=group,
        host=str(raw.get("host", "")).lower().encode("latin-1"),
        path_prefix=prefix.encode("latin-1"),
        header=header,
        cookie=cookie,
    )


@dataclass(frozen=True)
class Layout:
    """Every group by name ("default" is the top level's) and the routes to them."""

    groups: dict[str, UpstreamGroup]
    routes: tuple[Route, ...] = ()

    @property
    def default(self) -> UpstreamGroup:
        return self.groups["default"]


def read_yaml(path: str) -> dict[str, Any]:
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
    return data


def load_layout(path: str, defaults: dict[str, Any]) -> Layout:
    """The groups and routes of the --config file (a ConfigMap in Kubernetes)."""
    data = read_yaml(path)
    unknown = set(data) - GROUP_KEYS - {"groups", "routes"}
    if unknown:
        raise OptionError(f"{path}: unknown keys {sorted(unknown)}")
    try:
        top = {k: v for k, v in data.items() if k in GROUP_KEYS}
        groups = {"default": group_from(top, defaults)}
        named = data.get("groups") or {}
        if not isinstance(named, dict):
            raise OptionError("`groups` must be a mapping of name to group")
        for name, raw in named.items():
            if name == "default" or not isinstance(raw, dict):
                raise OptionError(f"group {name!r}: a mapping, and not named `default`")
            try:
                groups[str(name)] = group_from(raw, defaults, str(name))
            except OptionError as exc:
                raise OptionError(f"group {name!r}: {exc}") from None
        routes = data.get("routes") or []
        if not isinstance(routes, list):
            raise OptionError("`routes` must be a list")
        return Layout(groups, tuple(parse_route(r, groups) for r in routes))
    except OptionError as exc:
        raise OptionError(f"{path}: {exc}") from None
