"""The ambassador's admin port beyond /healthz, /readyz and /metrics: /upstreams, the peers as
JSON (GET, open to all, as /metrics is), and PATCH /upstreams, a run-time change of peers'
state (drain, down) — a write, fenced as nginx Plus fences its API with allow/deny: only
from loopback, or with the token of --admin-token-file as `Authorization: Bearer TOKEN`."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any

from podkit.admin_http import Request, Response

log = logging.getLogger("ambassador.admin")

STATES = ("drain", "down")  # what a write may set, each true or false


def from_loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # a unix socket, or unknown: not loopback
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class WriteFence:
    """Who may write: loopback, or the bearer of the token. Refusals are counted."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token  # read at each write: a rotated Secret takes effect
        self.refused = 0

    def refusal(self, request: Request) -> Response | None:
        if from_loopback(request.peer):
            return None
        token = self.token()
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return None
        self.refused += 1
        log.warning(
            "admin write refused: %s %s from %s (not loopback, %s)",
            request.method,
            request.path,
            request.peer or "?",
            "no valid token" if token else "no --admin-token-file",
        )
        return Response.text(403, "forbidden: writes only from loopback or with the admin token\n")


Apply = Callable[[dict[str, Any]], list[dict[str, Any]]]


def parse_change(body: bytes) -> dict[str, Any]:
    """{"group": "default", "server": URL or "address": URL, "drain": true, "down": false}."""
    change = json.loads(body or b"null")
    if not isinstance(change, dict):
        raise ValueError("expected a JSON object")
    unknown = set(change) - {"group", "server", "address", *STATES}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    if not ("server" in change or "address" in change):
        raise ValueError("name the peer: `server` (as configured) or `address`")
    if not any(state in change for state in STATES):
        raise ValueError("nothing to change: give drain and/or down")
    if any(not isinstance(change[s], bool) for s in STATES if s in change):
        raise ValueError("drain and down are true or false")
    return change


def write_handler(fence: WriteFence, apply: Apply | None) -> Callable[[Request], Any]:
    async def patch(request: Request) -> Response:
        refused = fence.refusal(request)
        if refused is not None:
            return refused
        if request.method not in ("PATCH", "POST"):
            return Response.text(405, "PATCH or POST\n", Allow="GET, HEAD, PATCH, POST")
        if apply is None:
            return Response.text(
                409, "run-time changes need --workers 1 (each worker balances on its own)\n"
            )
        try:
            change = parse_change(request.body)
        except ValueError as exc:
            return Response.text(400, f"bad change: {exc}\n")
        changed = apply(change)
        if not changed:
            return Response.text(404, "no such peer\n")
        log.info("admin: %s set by %s", change, request.peer or "?")
        return Response(200, json.dumps(changed, indent=2).encode(), "application/json")

    return patch
