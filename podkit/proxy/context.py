"""What every exchange of one proxy shares: its settings, its counters, the header tables,
and the seam to the service, `pick`. Made once by the ProxyServer and handed down, so no
exchange reaches back through its connection to the server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import final

from podkit.proxy.head import RequestHead
from podkit.proxy.headers import H, classifier
from podkit.proxy.settings import ProxySettings
from podkit.proxy.stats import ProxyStats
from podkit.proxy.upstream import Upstream

access = logging.getLogger("access")

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
        self.request_table: dict[bytes, H | None] = classifier(settings.identity_headers)
        self.response_table: dict[bytes, H | None] = classifier(())
        self.draining = False  # set on shutdown: answered connections are closed, not kept

    def retry_allowed(self, method: bytes) -> bool:
        return self.settings.retry_non_idempotent or method in IDEMPOTENT

    def log_access(
        self, head: RequestHead, status: int, upstream: Upstream | None, seconds: float
    ) -> None:
        access.info(
            json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "client": head.peer,
                    "method": head.method.decode("latin-1"),
                    "target": head.url.decode("latin-1"),
                    "status": status,
                    "upstream": upstream.url if upstream else None,
                    "duration_ms": round(seconds * 1000, 3),
                }
            )
        )
