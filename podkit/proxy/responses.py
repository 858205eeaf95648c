"""Canned responses the engine answers itself: errors and limits, built once at import."""

from __future__ import annotations

from http import HTTPStatus


def canned(status: int, message: str, *, close: bool = True) -> bytes:
    body = f"{status} {HTTPStatus(status).phrase}: {message}\n".encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


BAD_REQUEST = canned(400, "malformed request")
MISSING_HOST = canned(400, "an HTTP/1.1 request needs exactly one Host header")
NOT_ALLOWED = canned(405, "CONNECT is not supported")
REQUEST_TIMEOUT = canned(408, "the request was not received in time")
TOO_LARGE = canned(413, "the request body is larger than the limit")
HEADERS_TOO_LARGE = canned(431, "the request head is larger than the limit")
BAD_GATEWAY = canned(502, "the upstream could not be reached")
BAD_GATEWAY_RESPONSE = canned(502, "the upstream sent an invalid response")
GATEWAY_TIMEOUT = canned(504, "the upstream did not answer in time")
NO_UPSTREAM = canned(502, "no live upstream: every upstream is down or failing")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
