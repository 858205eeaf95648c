"""What makes the proxy refuse a request head itself, with the answer it gets (nginx refuses
the same: CONNECT, odd versions, bad targets, two Hosts or none, heads and bodies over the
limits)."""

from __future__ import annotations

from podkit.proxy import responses
from podkit.proxy.head import RequestHead
from podkit.proxy.headers import valid_target
from podkit.proxy.settings import ProxySettings

Refusal = tuple[bytes, int, str]  # canned answer, status, reason counted


def refusal(
    head: RequestHead,
    version: str,
    transfer_encoding: bool,
    host_ok: bool,
    size: int,
    settings: ProxySettings,
) -> Refusal | None:
    """Why `head` is refused, or None. `host_ok`: the Host's syntax, checked by the caller,
    which remembers the last good one."""
    if head.method == b"CONNECT":
        return (responses.NOT_ALLOWED, 405, "malformed")
    if version not in ("1.0", "1.1") or (transfer_encoding and not head.http11):
        # llhttp takes any digit.digit; and Transfer-Encoding means nothing in HTTP/1.0
        return (responses.BAD_REQUEST, 400, "malformed")
    if not valid_target(head.method, head.url) or not host_ok:
        return (responses.BAD_REQUEST, 400, "malformed")
    if size > settings.max_header_size:
        return (responses.HEADERS_TOO_LARGE, 431, "header_too_large")
    if head.hosts > 1 or (head.http11 and head.hosts == 0):
        return (responses.MISSING_HOST, 400, "malformed")
    if settings.max_body_size and head.content_length > settings.max_body_size:
        return (responses.TOO_LARGE, 413, "body_too_large")
    return None
