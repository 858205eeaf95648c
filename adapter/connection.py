"""One kept connection to one Redis, and the scrape's pipelined round trip on it.

redis-py supplies the protocol (RESP, AUTH, TLS, unix sockets); the replies are read raw
(`disable_decoding`, no response callbacks) because the adapter parses INFO text itself.
The connection is kept between scrapes (reconnecting each time costs more than the whole
scrape) and dropped on any error, so the next scrape starts clean.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo

from adapter.config import AdapterConfig
from podkit.options import mask_credentials

log = logging.getLogger(__name__)

Command = tuple[str, ...]
ERROR_KINDS = ("auth", "connect", "internal", "redis", "timeout", "tls")


class Pipeline:
    """The scrape's one round trip: every source's commands in one write, and each source's
    slice of the replies handed back by its name."""

    __slots__ = ("_slices", "commands")

    def __init__(self, parts: Sequence[tuple[str, Sequence[Command]]]) -> None:
        self.commands: tuple[Command, ...] = tuple(c for _, cmds in parts for c in cmds)
        self._slices: dict[str, slice] = {}
        start = 0
        for name, cmds in parts:
            self._slices[name] = slice(start, start + len(cmds))
            start += len(cmds)

    def split(self, replies: Sequence[Any]) -> dict[str, Sequence[Any]]:
        return {name: replies[part] for name, part in self._slices.items()}


class ScrapeError(Exception):
    """Redis could not be scraped; `kind` is a short, bounded class for metrics and logs."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def connection_kwargs(url: str, config: AdapterConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(parse_url(url))
    if config.redis_user and not kwargs.get("username"):
        kwargs["username"] = config.redis_user
    if not kwargs.get("password"):
        password = config.password_for(url)
        if password:
            kwargs["password"] = password
    kwargs.update(
        socket_connect_timeout=config.connection_timeout,
        socket_timeout=config.connection_timeout,
        # No CLIENT SETINFO on connect and no silent reconnect loops: a failure is reported
        # by this scrape as redis_up 0, and the next scrape tries again.
        driver_info=DriverInfo(name=None, lib_version=None),
        protocol=2,  # RESP2: what every Redis speaks, without HELLO (Redis 6+) on connect
        retry=Retry(NoBackoff(), 0),
    )
    if kwargs.get("connection_class") is SSLConnection:
        kwargs.update(
            ssl_certfile=config.tls_client_cert_file or None,
            ssl_keyfile=config.tls_client_key_file or None,
            ssl_ca_certs=config.tls_ca_cert_file or None,
            ssl_cert_reqs=ssl.CERT_NONE if config.skip_tls_verification else ssl.CERT_REQUIRED,
            ssl_check_hostname=not config.skip_tls_verification,
        )
    return kwargs


def classify(exc: BaseException) -> ScrapeError:
    """A redis-py or OS error as a ScrapeError with a bounded kind and a readable message."""
    if isinstance(exc, ScrapeError):
        return exc
    if isinstance(exc, (redis_errors.AuthenticationError, redis_errors.AuthorizationError)):
        return ScrapeError("auth", f"authentication failed: {exc}")
    if isinstance(exc, redis_errors.ResponseError) and (
        "NOAUTH" in str(exc) or "WRONGPASS" in str(exc) or "NOPERM" in str(exc)
    ):
        return ScrapeError("auth", f"authentication failed: {exc}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, redis_errors.TimeoutError)):
        return ScrapeError("timeout", "timed out waiting for Redis")
    if isinstance(exc, ssl.SSLError):
        return ScrapeError("tls", f"TLS error: {exc}")
    if isinstance(exc, (redis_errors.ConnectionError, OSError)):
        return ScrapeError("connect", f"cannot reach Redis: {exc}")
    if isinstance(exc, redis_errors.RedisError):
        return ScrapeError("redis", f"{type(exc).__name__}: {exc}")
    return ScrapeError("internal", f"adapter bug while reading Redis' replies: {exc!r}")


class RedisLink:
    """A kept connection to one Redis URL."""

    def __init__(self, url: str, config: AdapterConfig) -> None:
        self.url = url
        self.shown = mask_credentials(url)
        self._config = config
        self._conn: AbstractConnection | None = None
        self._unnamed = False  # CLIENT SETNAME was refused (said once, not on every connect)

    async def connect(self) -> float:
        """Ensure a connection; returns the seconds it took (0 when one was kept)."""
        if self._conn is not None and self._conn.is_connected:
            return 0.0
        started = time.perf_counter()
        kwargs = connection_kwargs(self.url, self._config)
        cls: type[AbstractConnection] = kwargs.pop("connection_class", Connection)
        conn = cls(**kwargs)
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            await conn.disconnect()
            raise
        self._conn = conn
        if self._config.set_client_name:
            await self._name_connection()
        return time.perf_counter() - started

    async def _name_connection(self) -> None:
        # After connecting, not as part of it (as redis-py's client_name would): an ACL user
        # without CLIENT SETNAME is still scraped, as redis_exporter scrapes it.
        (reply,) = await self.round_trip((("CLIENT", "SETNAME", "redis_exporter"),))
        if isinstance(reply, redis_errors.ResponseError) and not self._unnamed:
            log.warning("%s: cannot name the connection (%s); scraping on", self.shown, reply)
        self._unnamed = isinstance(reply, redis_errors.ResponseError)

    async def round_trip(self, commands: Sequence[Command]) -> list[Any]:
        """Send all commands in one write and read every reply.

        An error reply stands in the list as the ResponseError object: a command that this
        Redis refuses (CONFIG renamed, LATENCY disabled) costs its metrics, not the scrape.
        """
        conn = self._conn
        assert conn is not None, "connect() first"
        try:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response(disable_decoding=True))
                except redis_errors.ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.disconnect()
            except Exception:
                log.debug("error while closing the connection to %s", self.shown, exc_info=True)
