"""What every exchange of one proxy shares: its settings, its counters, the header tables,
and the seam to the service, `pick`. Made once by the ProxyServer and handed down, so no
exchange reaches back through its connection to the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import final

from podkit.proxy.access import AccessLog
from podkit.proxy.head import RequestHead
from podkit.proxy.headers import H, classifier
from podkit.proxy.settings import ProxySettings
from podkit.proxy.stats import ProxyStats
from podkit.proxy.upstream import Upstream

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})

# The seam between the engine and a service: the upstream for this request head on this
# attempt (0 first, then each retry), or None when there is none left to try.
Pick = Callable[[RequestHead, int], Upstream | None]
# The verified client certificate's identity (mTLS) as the complete header lines that carry
# it upstream, each ending in CRLF (b"" for none): asked once per client connection.
IdentityOf = Callable[[asyncio.Transport], bytes]


@final
class Context:
    def __init__(
        self, settings: ProxySettings, pick: Pick, client_identity: IdentityOf | None = None
    ) -> None:
        self.settings = settings
        self.pick = pick
        self.client_identity = client_identity
        self.stats = ProxyStats()
        self.request_table: dict[bytes, H | None] = classifier(
            settings.identity_headers, request_id=settings.access_log
        )
        self.response_table: dict[bytes, H | None] = classifier(())
        self.draining = False  # set on shutdown: answered connections are closed, not kept
        self.access = AccessLog(settings.access_log_format) if settings.access_log else None
        # Request ids as nginx's $request_id (32 hex digits): random per process, then a
        # count, so that making one costs no system call.
        self._id_prefix = os.urandom(8).hex().encode()
        self._ids = 0

    def next_request_id(self) -> bytes:
        self._ids += 1
        return b"%s%016x" % (self._id_prefix, self._ids)
