"""The TLS port's first bytes decide what the connection is.

A TLS record goes on to the TLS layer with those bytes, exactly as if the loop had started
TLS itself. Plain HTTP sent to the TLS port (`curl http://host:8443/`, a health check with
the wrong scheme) gets nginx's answer, 400 "The plain HTTP request was sent to HTTPS port",
instead of a closed connection that leaves the client guessing; OpenSSL would only see an
undecodable record and drop it.
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

        protocol: Callable[..., Any] = uvloop_loop.SSLProtocol  # type: ignore[attr-defined]
        return protocol
    from asyncio.sslproto import SSLProtocol as AsyncioSSLProtocol

    return AsyncioSSLProtocol


class FirstBytes(asyncio.Protocol):
    """Waits for a connection's first bytes, then hands it over (see the module docstring).

    Until then it bounds the wait as the handshake is bounded: a client that sends nothing
    is dropped after `handshake_timeout`.
    """

    __slots__ = ("app_factory", "context", "failures", "handshake_timeout", "timer", "transport")

    def __init__(
        self,
        app_factory: Callable[[], asyncio.BaseProtocol],
        context: ssl.SSLContext,
        handshake_timeout: float,
        failures: dict[str, int],
    ) -> None:
        self.app_factory = app_factory
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.failures = failures
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.handshake_timeout, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None and self.timer is not None
        self.timer.cancel()
        # A TLS record starts with its content type (22 for a handshake); an HTTP request
        # with a method, ASCII letters. Anything else is left to OpenSSL to refuse.
        if data[:1].isalpha():
            self.failures["plain_http"] = self.failures.get("plain_http", 0) + 1
            transport.write(PLAIN_HTTP_ANSWER)
            transport.close()
            return
        loop = asyncio.get_running_loop()
        tls = ssl_protocol_class(loop)(
            loop,
            self.app_factory(),
            self.context,
            None,
            server_side=True,
            ssl_handshake_timeout=self.handshake_timeout,
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
