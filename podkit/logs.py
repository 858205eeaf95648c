"""Logging configured once per process: plain text or JSON lines, on stderr.

Set up with logging's own calls, not logging.config.dictConfig: the proxies are kept small,
and logging.config (with logging.handlers, socketserver and queue it imports) is ~1 MiB of
their resident memory for one handler, one formatter and one filter."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ClientErrors(logging.Filter):
    """aiohttp logs a malformed request (no Host, a bad Content-Length...) and a client gone
    mid-request as errors with a traceback, though they are the client's doing: one line
    says who and what (a warning for the 400, info for the client gone, as nginx logs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info and record.levelno >= logging.ERROR else None
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        # Looked up, not imported: only aiohttp raises it, and the proxies never load aiohttp.
        exceptions = sys.modules.get("aiohttp.http_exceptions")
        processing_error = getattr(exceptions, "HttpProcessingError", None)
        if (
            processing_error is not None
            and isinstance(exc, processing_error)
            and 400 <= getattr(exc, "code", 0) < 500
        ):
            message = getattr(exc, "message", exc)
            self._one_line(record, logging.WARNING, "bad request from %s: %s", peer, message)
        elif isinstance(exc, ConnectionResetError):
            self._one_line(record, logging.INFO, "client %s went away: %s", peer, exc)
        return True

    @staticmethod
    def _one_line(
        record: logging.LogRecord, level: int, msg: str, peer: object, what: object
    ) -> None:
        record.msg, record.args = msg, (peer, " ".join(str(what).split()))
        record.levelno, record.levelname = level, logging.getLevelName(level)
        record.exc_info, record.exc_text = None, None


def parse_format(text: str) -> LogFormat:
    value = text.strip().lower()
    if value in ("txt", "plain"):  # redis_exporter calls it "txt"
        value = "text"
    if value not in LOG_FORMATS:
        raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}, got {text!r}")
    return value


def parse_level(text: str) -> str:
    value = text.strip().lower()
    if value == "warn":
        value = "warning"
    if value not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return value


def configure(level: str = "info", fmt: LogFormat = "text") -> None:
    """Every record to stderr through one handler, replacing the root's handlers; loggers
    that exist already keep working (none is disabled)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log is opt-in per service; keep its chatter out otherwise.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    for stale in [f for f in server.filters if isinstance(f, ClientErrors)]:
        server.removeFilter(stale)  # configured again (tests): one filter, not two
    server.addFilter(ClientErrors())
