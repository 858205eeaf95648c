"""A client connection's reading side: bytes fed to httptools, each request head sorted
into a RequestHead and an Exchange, its body passed on, and a request that must not go
upstream refused (400, 408, 413, 431...) behind the ones still being answered.

`ClientConnection` (podkit.proxy.downstream) adds the connection around it: the transport,
writing, deadlines and closing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import httptools

from podkit.proxy import responses
from podkit.proxy.attempt import ClientSide
from podkit.proxy.checks import refusal
from podkit.proxy.context import Context
from podkit.proxy.exchange import Exchange
from podkit.proxy.flow import PIPELINED, REFUSED, UPGRADE, Flow
from podkit.proxy.forwarding import Forwarding
from podkit.proxy.head import RequestHead
from podkit.proxy.headers import valid_host

log = logging.getLogger(__name__)

# What the connection is waiting for, when its deadline runs out.
NO_WAIT, HEAD_WAIT, BODY_WAIT, IDLE_WAIT = range(4)


class RequestIntake(ClientSide):
    """The httptools callbacks of one client connection and the requests they build. The
    connection's own parts it calls back are the methods below that raise; a base class
    rather than a typing.Protocol, so that the compiled build dispatches them natively."""

    __slots__ = (
        "_valid_host",
        "ctx",
        "current",
        "error",
        "flow",
        "forwarding",
        "head_size",
        "identity",
        "in_head",
        "parser",
        "parsing",
        "peer",
        "queue",
        "refused",
        "settings",
        "transport",
        "trusted",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.trusted = False
        self.identity = b""  # header lines of the verified client certificate (mTLS)
        self.queue: deque[Exchange] = deque()  # queue[0] is being answered
        self.parsing = False  # inside feed_data: nothing goes upstream until it returns
        self.flow = Flow()
        # -- per request being parsed --------------------------------------------------------
        self.current: Exchange | None = None
        self.in_head = False
        self.head_size = 0
        self.error: tuple[bytes, int, str] | None = None  # a refusal still to be sent
        self.refused = False  # a request was refused: read nothing more
        self.forwarding = Forwarding(self.settings.underscores_in_headers)
        self._valid_host: bytes | None = None

    # -- called back: the connection's parts ---------------------------------------------------
    def _deadline(self, seconds: float, kind: int) -> None:
        raise NotImplementedError

    def cancel_timer(self) -> None:
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse what arrived; a refused request is queued to be answered, then closes."""
        self.parsing = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_requested(data, upgrade.args[0] if upgrade.args else len(data))
        except httptools.HttpParserError as exc:
            if self.error is None:
                self.ctx.stats.reject("malformed")
                log.warning("%s: malformed request: %s", self.peer, exc)
                self._refuse(responses.BAD_REQUEST, 400, "malformed")
        self.parsing = False
        if self.error is not None and not self.refused:
            self._refuse_now()
        elif self.in_head and not self.refused:
            self.head_size += len(data)
            if self.head_size > self.settings.max_header_size:
                self._refuse(responses.HEADERS_TOO_LARGE, 431, "header_too_large")
                self._refuse_now()

    def _upgrade_requested(self, data: bytes, offset: int) -> None:
        exchange = self.queue[-1] if self.queue else None
        if exchange is None or self.error is not None:
            return
        exchange.upgrade_tail = data[offset:]
        self.pause_reading(UPGRADE)

    # -- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = Exchange(self.ctx, self, RequestHead(self.peer))
        self.in_head = True
        self.head_size = 0
        if not self.queue:
            self._deadline(self.settings.header_timeout, HEAD_WAIT)

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.head.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        if self.in_head:  # else a chunked body's trailer fields: dropped, as nginx drops them
            self.head_size += len(name) + len(value) + 4
            self.forwarding.add(self.ctx.request_table, self.current.head, name, value)

    def on_headers_complete(self) -> None:
        exchange = self.current
        assert exchange is not None
        self.in_head = False
        if self.error is not None:  # a request after a refused one: never forwarded
            self.forwarding.reset()
            return
        parser = self.parser
        head = exchange.head
        head.method = parser.get_method()
        head.keep_alive = exchange.keep_alive = parser.should_keep_alive()
        version = parser.get_http_version()
        head.http11 = version == "1.1"
        settings = self.settings
        host = head.host
        host_ok = host is None or host == self._valid_host or valid_host(host)
        te = bool(self.forwarding.te)
        refused = refusal(head, version, te, host_ok, self.head_size, settings)
        if refused is not None:
            self._refuse(*refused)
        elif self.forwarding.lookalike:
            log.warning(
                "%s: refused a header named %r, which reads as a framing header",
                self.peer,
                self.forwarding.lookalike.decode("latin-1"),
            )
            self._refuse(responses.BAD_REQUEST, 400, "framing_lookalike")
        if self.error is not None:
            self.forwarding.reset()
            return
        self._valid_host = host  # the next request here likely repeats it
        forwarding = self.forwarding
        if settings.access_log:
            given = forwarding.request_id
            head.request_id = given if given and self.trusted else self.ctx.next_request_id()
        headers = forwarding.headers_to_pass(head, self.ctx.request_table, parser.should_upgrade())
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname") if head.host is None else None
        exchange.forward(
            forwarding.request_head(head, headers, settings, self.trusted, self.identity, sockname)
        )
        forwarding.reset()
        self.cancel_timer()
        self.queue.append(exchange)
        if len(self.queue) == 1:
            exchange.start()
        else:
            self.pause_reading(PIPELINED)

    def on_body(self, body: bytes) -> None:
        exchange = self.current
        if exchange is None or self.error is not None or self.refused or exchange not in self.queue:
            return
        exchange.body_size += len(body)
        limit = self.settings.max_body_size
        if limit and exchange.body_size > limit:
            self.ctx.stats.reject("body_too_large")
            self.refused = True
            self.flow.pause(REFUSED)
            exchange.fail(responses.TOO_LARGE, 413)  # aborts instead if a response started
            return
        if exchange.head.chunked:
            exchange.forward(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            exchange.forward(body)
        if not exchange.request_complete and exchange is self.queue[0]:
            self._deadline(self.settings.body_timeout, BODY_WAIT)

    def on_message_complete(self) -> None:
        exchange = self.current
        if exchange is None or self.error is not None or self.refused or exchange not in self.queue:
            return
        if exchange.head.chunked:
            exchange.forward(b"0\r\n\r\n")
        exchange.request_complete = True
        self.current = None
        if exchange is self.queue[0]:
            self.cancel_timer()  # no body wait left

    # -- refusing a request --------------------------------------------------------------------
    def _refuse(self, canned: bytes, status: int, reason: str) -> None:
        if self.error is None:
            self.error = (canned, status, reason)
            if reason != "malformed":
                self.ctx.stats.reject(reason)

    def _refuse_now(self) -> None:
        """Queue the refusal behind any exchange still being answered, then close."""
        assert self.error is not None
        canned, status, _ = self.error
        self.refused = True
        exchange = (
            self.current
            if self.current is not None
            else Exchange(self.ctx, self, RequestHead(self.peer))
        )
        if exchange in self.queue:  # refused mid-body: its upstream part is dropped
            self.flow.pause(REFUSED)
            exchange.fail(canned, status)
            return
        exchange.out.clear()
        exchange.canned, exchange.canned_status = canned, status
        self.current = None
        self.queue.append(exchange)
        self.flow.pause(REFUSED)
        if len(self.queue) == 1:
            exchange.start()
