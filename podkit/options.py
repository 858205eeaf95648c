"""Every option declared once: flag, env name, default, parser and help in one place.

A service describes its configuration as a frozen dataclass whose fields are made with
`option(...)`; `load()` turns that into an argparse parser, reads flags and the environment
(flags win), and builds the dataclass. A bad value stops startup with one line that names
the flag and the variable, and exit status 2, as argparse does for usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n", ""})


class OptionError(ValueError):
    """A value that does not parse; the message says what was expected."""


@dataclass(frozen=True)
class OptionSpec:
    env: str
    help: str
    parse: Callable[[str], Any]
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    secret: bool = False
    is_bool: bool = False
    metavar: str | None = None
    multiple: bool = False  # a repeatable flag; the variable holds one item per line or comma


def option(
    default: Any,
    *,
    env: str,
    help: str,
    parse: Callable[[str], Any] = str,
    flag: str | None = None,
    aliases: Sequence[str] = (),
    secret: bool = False,
    metavar: str | None = None,
    multiple: bool = False,
) -> Any:
    """A dataclass field that is also a command-line flag and an environment variable.

    An `env` of the form "*_NAME" takes the class's ENV_PREFIX ("SIDECAR" → SIDECAR_NAME), so
    options shared by several services are declared once.
    """
    is_bool = parse is parse_bool
    spec = OptionSpec(env, help, parse, flag, tuple(aliases), secret, is_bool, metavar, multiple)
    return field(default=default, metadata={"option": spec})


def env_name(cls: type[Any], spec: OptionSpec) -> str:
    if spec.env.startswith("*_"):
        return f"{cls.ENV_PREFIX}{spec.env[1:]}"
    return spec.env


def split_items(text: str) -> list[str]:
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OptionError(f"expected true or false, got {text!r}")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from '15', '15s', '500ms', '2m' or Go's '1m30s' (redis_exporter's format)."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        seconds, pos = 0.0, 0
        for part in _DURATION_PART.finditer(value):
            if part.start() != pos:
                break
            seconds += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
            pos = part.end()
        if pos == 0 or pos != len(value):
            raise OptionError(
                f"expected a duration such as 15s, 500ms or 2m, got {text!r}"
            ) from None
    if not seconds >= 0:
        raise OptionError(f"a duration cannot be negative, got {text!r}")
    return seconds


def parse_choice(*choices: str) -> Callable[[str], Any]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise OptionError(f"expected one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


def parse_host_port(default_host: str = "0.0.0.0") -> Callable[[str], tuple[str, int]]:
    """'host:port', ':port' or '[v6]:port' into (host, port)."""

    def parse(text: str) -> tuple[str, int]:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise OptionError(f"expected host:port, got {text!r}")
        host = host.strip("[]") or default_host
        return host, int(port)

    return parse


# user:password@ up to the last @ before the path: a password may hold a bare @.
_USERINFO = re.compile(r"(://[^/@:\s'\"]*):[^/\s'\"]*@")


def mask_credentials(text: str) -> str:
    """Text with any URL's password (scheme://user:password@host) replaced, for messages."""
    return _USERINFO.sub(r"\1:<redacted>@", text)


def flag_name(f: dataclasses.Field[Any]) -> str:
    spec: OptionSpec = f.metadata["option"]
    return spec.flag or "--" + f.name.replace("_", "-")


def build_parser(cls: type[Any], prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        # Go-style single-dash aliases (-redis.addr) must not be read as bundled short flags.
        allow_abbrev=False,
    )
    for f in dataclasses.fields(cls):
        spec: OptionSpec | None = f.metadata.get("option")
        if spec is None:
            continue
        shown_default = (
            "" if spec.secret or f.default in (None, "", ()) else f" (default: {f.default})"
        )
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": f"{spec.help} [env {env_name(cls, spec)}]{shown_default}",
            "metavar": spec.metavar,
        }
        if spec.is_bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        if spec.multiple:
            kwargs.update(action="append", help=kwargs["help"] + " (repeatable)")
        parser.add_argument(flag_name(f), *spec.aliases, **kwargs)
    return parser


def load(
    cls: type[T],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prog: str,
    description: str = "",
) -> T:
    """Build `cls` from flags, then the environment, then the defaults.

    Exits with status 2 and a one-line message on a bad value, as argparse does.
    """
    environ = os.environ if environ is None else environ
    parser = build_parser(cls, prog, description)
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        spec: OptionSpec | None = f.metadata.get("option")
        if spec is None:
            continue
        raw = getattr(args, f.name)
        source = flag_name(f)
        env = env_name(cls, spec)
        if raw is None and env in environ:
            raw, source = environ[env], f"${env}"
            if spec.multiple:
                raw = split_items(raw)
        if raw is None:
            continue
        items = raw if spec.multiple else [raw]
        try:
            parsed = [spec.parse(item) for item in items]
        except (OptionError, ValueError) as exc:
            # A parser's message may quote the value: for secrets, say nothing of it; of any
            # other value, not the password a URL in it may carry.
            shown, why = (
                ("<redacted>", "not a valid value")
                if spec.secret
                else (mask_credentials(repr(raw)), mask_credentials(str(exc)))
            )
            parser.exit(
                2,
                f"{prog}: invalid value {shown} for {flag_name(f)} / {env} "
                f"(from {source}): {why}\n",
            )
        values[f.name] = tuple(parsed) if spec.multiple else parsed[0]
    try:
        config = cls(**values)
    except (OptionError, ValueError) as exc:
        parser.exit(2, f"{prog}: {exc}\n")
    return config


def describe(cls: type[Any], name: str) -> str:
    """'--flag / ENV_NAME' for a field, for error messages about that option."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f"{flag_name(f)} / {env_name(cls, f.metadata['option'])}"


def env_table(cls: type[Any]) -> list[tuple[str, str, str, str]]:
    """(flag, env, default, help) rows, for the README's configuration table."""
    rows = []
    for f in dataclasses.fields(cls):
        spec: OptionSpec | None = f.metadata.get("option")
        if spec is not None:
            default = "" if spec.secret else str(f.default)
            rows.append((flag_name(f), env_name(cls, spec), default, spec.help))
    return rows


def redacted(cls_instance: Any) -> dict[str, Any]:
    """The configuration as a dict for logging, with secrets replaced."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls_instance):
        spec: OptionSpec | None = f.metadata.get("option")
        value = getattr(cls_instance, f.name)
        out[f.name] = "<redacted>" if spec is not None and spec.secret and value else value
    return out
