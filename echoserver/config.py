"""The echo server's options, declared once: flag, ECHO_* variable, default, parser, help."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from podkit import logs
from podkit.options import OptionError, option, parse_bool, parse_host_port

PROG = "echoserver"
DESCRIPTION = (
    "Echo server: the demo main container of the sidecar and ambassador pods. "
    "Answers every request with what it received (text, or JSON when asked)."
)


def parse_name(text: str) -> str:
    """The server's name: printable and not empty, since it also goes into a header."""
    value = text.strip()
    if not value or not value.isprintable():
        raise OptionError(f"expected a non-empty printable name, got {text!r}")
    return value


@dataclass(frozen=True)
class EchoConfig:
    listen: tuple[str, int] = option(
        ("0.0.0.0", 8080),
        env="ECHO_LISTEN",
        parse=parse_host_port(),
        metavar="HOST:PORT",
        help="address to serve on (127.0.0.1:8080 behind a sidecar)",
    )
    name: str = option(
        socket.gethostname(),
        env="ECHO_NAME",
        parse=parse_name,
        help="the name this server reports on every page and in X-Echo-Server "
        "(default: the host name, i.e. the pod or container name)",
    )
    log_level: str = option(
        "info",
        env="ECHO_LOG_LEVEL",
        parse=logs.parse_level,
        help="log level: debug, info, warning or error",
    )
    log_format: logs.LogFormat = option(
        "text",
        env="ECHO_LOG_FORMAT",
        parse=logs.parse_format,
        help="log format: text or json",
    )
    access_log: bool = option(
        False,
        env="ECHO_ACCESS_LOG",
        parse=parse_bool,
        help="log one line per request (aiohttp's access log)",
    )
