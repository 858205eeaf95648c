"""Basic auth on the metrics port: redis_exporter's -basic-auth-username/-basic-auth-password.

As in redis_exporter (exporter/http.go `ServeHTTP`), the check wraps every path — metrics,
/scrape, /health, the index page, unknown paths — except the adapter's own probes /healthz
and /readyz, which the kubelet calls without credentials and which tell nothing about Redis.
Both user name and password are compared in constant time, both always (no early exit
that would time which one was wrong). A refusal is a 401 with redis_exporter's
WWW-Authenticate header, one warning line (peer, method, path, reason: never what was
sent) and a count in redis_adapter_http_auth_failures_total{reason}.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Literal

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from podkit.exposition import Exposition, Family, labels

log = logging.getLogger(__name__)

# Byte for byte what redis_exporter sends (exporter/http.go), so clients see no change.
CHALLENGE = 'Basic realm="redis-exporter, charset=UTF-8"'
OPEN_PATHS = frozenset({"/healthz", "/readyz"})

Reason = Literal["missing", "malformed", "wrong"]
REASONS: tuple[Reason, ...] = ("missing", "malformed", "wrong")
FAILURES = Family(
    "adapter_http_auth_failures_total",
    "counter",
    "Requests refused by basic auth: no credentials, an unreadable Authorization header, "
    "or a wrong user name or password",
)


class BasicAuth:
    """The configured credentials and the refusals counted so far."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()
        self.failures: dict[Reason, int] = dict.fromkeys(REASONS, 0)

    def check(self, header: str | None) -> Reason | None:
        """None when `header` (an Authorization value) carries the configured credentials,
        else why not."""
        if not header:
            return "missing"
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return "malformed"
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return "malformed"
        username, colon, password = decoded.partition(b":")
        if not colon:
            return "malformed"
        username_ok = hmac.compare_digest(username, self._username)
        password_ok = hmac.compare_digest(password, self._password)
        return None if username_ok and password_ok else "wrong"

    def add_metrics(self, out: Exposition) -> None:
        for reason in REASONS:
            out.put(FAILURES, float(self.failures[reason]), labels((("reason", reason),)))

    def exposition(self, namespace: str) -> bytes:
        out = Exposition(namespace)
        self.add_metrics(out)
        return out.render()


def middleware(auth: BasicAuth) -> Middleware:
    """The aiohttp middleware that refuses requests without the configured credentials."""

    @web.middleware
    async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        reason = auth.check(request.headers.get(hdrs.AUTHORIZATION))
        if reason is None:
            return await handler(request)
        auth.failures[reason] += 1
        # request.path, not the URL: a /scrape target in the query may carry a password.
        log.warning(
            "refused %s %s from %s: %s credentials",
            request.method,
            request.path,
            request.remote,
            reason,
        )
        return web.Response(
            status=401, text="Unauthorized\n", headers={hdrs.WWW_AUTHENTICATE: CHALLENGE}
        )

    return basic_auth
