"""The syslog output: RFC 5424 messages, octet-counted, over one TCP or TLS connection that
is opened again, with backoff, whenever it fails.

Syslog over TCP has no acknowledgement. The closest the sender can get: the batch counts as
delivered once the receiver's TCP stack acknowledged every byte (the socket's send queue,
TIOCOUTQ, is empty) and the receiver has not closed the connection. A failure before that
resends the whole batch on a new connection: at least once, duplicates bounded by a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import ssl
import struct
import termios
import time

from logagent.config import FACILITIES, SEVERITIES, LogagentConfig
from logagent.follow import Chunk
from logagent.metrics import Stats
from logagent.outputs import BACKOFF_FIRST, BACKOFF_MAX, count_sent
from logagent.outputs.rfc5424 import Formatter

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
ACK_TIMEOUT = 30.0  # the receiver's TCP stack took nothing for this long: reconnect
_FAILURES = (OSError, ssl.SSLError, TimeoutError, ConnectionError, EOFError)


def tls_context(config: LogagentConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.syslog_tls_ca_file or None)
    if config.syslog_tls_cert_file:
        context.load_cert_chain(config.syslog_tls_cert_file, config.syslog_tls_key_file)
    if config.syslog_tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def unsent_bytes(fd: int) -> int:
    """Bytes in the socket's send queue the peer has not acknowledged (Linux)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])


class SyslogOutput:
    name = "syslog"

    def __init__(self, config: LogagentConfig, stats: Stats) -> None:
        self.host, self.port = config.syslog_address
        self.tls = tls_context(config) if config.syslog_tls else None
        self.server_hostname = config.syslog_tls_server_name or self.host
        self.stats = stats
        self.formatter = Formatter(
            facility=FACILITIES[config.syslog_facility],
            severity=SEVERITIES[config.syslog_severity],
            hostname=config.syslog_hostname,
            app_name=config.syslog_app_name or config.container_name or "logagent",
            metadata=config.metadata,
        )
        self._writer: asyncio.StreamWriter | None = None
        self._watch: asyncio.Task[None] | None = None
        self._peer_closed = False
        self._failing_since: float | None = None

    @property
    def where(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://{self.host}:{self.port}"

    async def start(self) -> None:
        self.stats.output_up[self.name] = 0
        with contextlib.suppress(*_FAILURES):  # not there yet: the first send retries
            await self._connect()

    async def _connect(self) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.server_hostname if self.tls else None,
            )
        self._writer, self._peer_closed = writer, False
        self._watch = asyncio.create_task(self._watch_peer(reader))
        self.stats.output_up[self.name] = 1
        if self._failing_since is not None:
            log.info("syslog %s is back after %.1fs", self.where,
                     time.monotonic() - self._failing_since)
            self._failing_since = None
        else:
            log.info("connected to syslog %s", self.where)

    async def _watch_peer(self, reader: asyncio.StreamReader) -> None:
        """The receiver sends nothing; end of stream means it closed the connection."""
        with contextlib.suppress(*_FAILURES):
            while await reader.read(4096):
                pass
        self._peer_closed = True

    async def send(self, batch: list[Chunk]) -> None:
        data = self.formatter.frames(batch)
        delay = BACKOFF_FIRST
        while True:
            try:
                if self._writer is None:
                    await self._connect()
                await self._deliver(data)
                break
            except _FAILURES as exc:
                self._failed(exc, delay)
                await self._disconnect()
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        count_sent(self.stats.lines_sent, self.stats.bytes_sent, self.name, batch)

    async def _deliver(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        writer.write(data)
        await writer.drain()
        transport = writer.transport
        sock = transport.get_extra_info("socket")
        deadline = time.monotonic() + ACK_TIMEOUT
        pause = 0.0005
        while True:
            if self._peer_closed or transport.is_closing():
                raise ConnectionResetError("the receiver closed the connection")
            if transport.get_write_buffer_size() == 0 and (
                sock is None or unsent_bytes(sock.fileno()) == 0
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the receiver took nothing for {ACK_TIMEOUT:.0f}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _failed(self, exc: BaseException, delay: float) -> None:
        self.stats.output_errors[self.name] += 1
        self.stats.output_up[self.name] = 0
        reason = str(exc) or type(exc).__name__
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning("syslog %s failed: %s; buffering, reading paused when full, "
                        "retrying", self.where, reason)
        else:
            log.debug("syslog %s still failing: %s; next try in %.1fs", self.where, reason,
                      delay)

    async def _disconnect(self) -> None:
        writer, self._writer = self._writer, None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if writer is not None:
            writer.transport.abort()  # unsent bytes are resent on the next connection

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if self._watch is not None:
            self._watch.cancel()
        if writer is not None:
            writer.close()
            with contextlib.suppress(*_FAILURES):
                async with asyncio.timeout(2):
                    await writer.wait_closed()
