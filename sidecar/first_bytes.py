"""The TLS port's first bytes decide what the connection is.

A TLS record goes on to the TLS layer with those bytes, exactly as if the loop had started
TLS itself. Plain HTTP sent to the TLS port (`curl http://host:8443/`, a health check with
the wrong scheme) gets nginx's answer, 400 "The plain HTTP request was sent to HTTPS port",
instead of a closed connection that leaves the client guessing; OpenSSL would only see an
undecodable record and drop it.

Holding the connection before TLS starts also lets it see how each handshake ends, which
neither asyncio nor uvloop reports: one that stalls past the timeout or loses its client
half-way is counted (`timeout`, `client_closed`) beside the failures OpenSSL raises.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, cast

BODY = b"The plain HTTP request was sent to HTTPS port\n"
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s" % (len(BODY), BODY)
)


def ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """The loop's own TLS protocol: uvloop's (in C) under uvloop, asyncio's otherwise. Both
    take the same arguments and are fed through get_buffer/buffer_updated."""
    if type(loop).__module__.startswith("uvloop"):
        from uvloop import loop as uvloop_loop

        protocol: Callable[..., Any] = uvloop_loop.SSLProtocol  # type: ignore[attr-defined,unused-ignore]
        return protocol
    from asyncio.sslproto import SSLProtocol as AsyncioSSLProtocol

    return AsyncioSSLProtocol


def count_handshake_end(
    transport: asyncio.BaseTransport, failures: dict[str, int]
) -> Callable[[asyncio.Future[None]], None]:
    """A done callback for the TLS protocol's waiter future, which ends with the handshake:
    with None when it completed or the client closed the connection half-way (then the
    transport is closing already), with the error otherwise. An SSLError is counted by
    reason where OpenSSL raised it (`tls.count_handshake_failures`)."""

    def ended(waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            return
        exc = waiter.exception()
        if exc is None:
            reason = "client_closed" if transport.is_closing() else ""
        elif isinstance(exc, ssl.SSLError):
            reason = ""
        else:  # both loops abort a handshake past its timeout with ConnectionAbortedError
            reason = "timeout" if isinstance(exc, ConnectionAbortedError) else "client_closed"
        if reason:
            failures[reason] = failures.get(reason, 0) + 1

    return ended


class FirstBytes(asyncio.Protocol):
    """Waits for a connection's first bytes, then hands it over (see the module docstring).

    The handshake's time bound counts from the connect: a client that sends nothing is
    dropped when it runs out (a `timeout`), one that connects and closes without a byte
    (a load balancer's TCP check) is not counted at all. With `answer_plain_http` off (a
    port that does not speak HTTP) plain text goes to OpenSSL like any other bytes.
    """

    __slots__ = (
        "answer_plain_http",
        "app_factory",
        "context",
        "deadline",
        "failures",
        "handshake_timeout",
        "timer",
        "transport",
    )

    def __init__(
        self,
        app_factory: Callable[[], asyncio.BaseProtocol],
        context: ssl.SSLContext,
        handshake_timeout: float,
        failures: dict[str, int],
        answer_plain_http: bool = True,
    ) -> None:
        self.app_factory = app_factory
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.failures = failures
        self.answer_plain_http = answer_plain_http
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.handshake_timeout
        self.timer = loop.call_at(self.deadline, self._silent_too_long)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _silent_too_long(self) -> None:
        self.failures["timeout"] = self.failures.get("timeout", 0) + 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None and self.timer is not None
        self.timer.cancel()
        # A TLS record starts with its content type (22 for a handshake); an HTTP request
        # with a method, ASCII letters. Anything else is left to OpenSSL to refuse.
        if self.answer_plain_http and data[:1].isalpha():
            self.failures["plain_http"] = self.failures.get("plain_http", 0) + 1
            transport.write(PLAIN_HTTP_ANSWER)
            transport.close()
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(count_handshake_end(transport, self.failures))
        tls = ssl_protocol_class(loop)(
            loop,
            self.app_factory(),
            self.context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=max(self.deadline - loop.time(), 0.001),
        )
        transport.set_protocol(tls)
        tls.connection_made(transport)
        view = memoryview(data)
        while view:
            buffer = memoryview(tls.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]
