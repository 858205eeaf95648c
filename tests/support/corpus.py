"""Malformed and request-smuggling HTTP/1.1 requests, and how to replay one over a socket.

Every case is one complete raw request as a client would send it. What each list means:

- `MALFORMED`: invalid by RFC 9112/9110 and rejected by nginx 1.22. A proxy answers 400
  (`status`), closes the connection, and passes nothing to the upstream. `nginx` is nginx's
  own answer: 400 mostly; 501 for a Transfer-Encoding it does not know, where RFC 9112 §6.3
  asks for 400 when chunked is not the final coding; 505 for HTTP/2.0 and HTTP/11.
- `OVER_LIMIT`: well formed but over the proxy's default limits (8 KiB of head, 1 MiB of
  body). nginx counts the head per line (414 for the request line, 400 for a header line);
  the sidecar counts the whole head and answers 431.
- `NGINX_STRICTER`: rejected by nginx but not malformed. A proxy may pass these on.
- `ACCEPTED_BY_NGINX`: shapes a strict parser rejects (llhttp rejects most of them) that
  nginx passes on, so nginx cannot vouch for them. Documentation, not requirements.
- `VALID`: requests every proxy passes on, for the harness to prove it can fail.
- `FRAMING_LOOKALIKES`: header names that read as Content-Length or Transfer-Encoding once
  "-" and "_" are removed and case is ignored (http-desync-guardian's "Ambiguous,
  SuspiciousHeader"; its other shapes, names with spaces, controls or non-ASCII, are
  `MALFORMED` or `ACCEPTED_BY_NGINX` above). The proxies refuse them with 400. nginx passes
  them on but never frames by them: it drops the names with "_" (underscores_in_headers
  off) and forwards the others as unknown headers, framing by the real Content-Length.
- `UNDERSCORE_NAMES`: other names with "_", dropped by nginx and by the proxies alike (the
  request goes on without them): a CGI or WSGI upstream reads X_Forwarded_For as
  X-Forwarded-For.

tests/integration/sidecar/test_corpus_nginx_oracle.py checks every list against a real nginx.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Case:
    id: str
    raw: bytes
    nginx: int  # nginx 1.22's answer: the status, or 200 when it passes the request on
    status: int = 400  # what the sidecar must answer


def params(cases: Iterable[Case]) -> list[object]:
    return [pytest.param(case, id=case.id) for case in cases]


HOST = b"Host: example.test\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
CL5 = b"Content-Length: 5\r\n"
CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"


def te(value: bytes) -> bytes:
    return b"Transfer-Encoding: " + value + b"\r\n"


def get(head: bytes = b"", line: bytes = b"GET / HTTP/1.1", host: bytes = HOST) -> bytes:
    return line + b"\r\n" + host + head + b"\r\n"


def post(head: bytes, body: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\n" + HOST + head + b"\r\n" + body


def chunked(body: bytes) -> bytes:
    return post(TE, body)


def line(request_line: bytes) -> bytes:
    return get(line=request_line)


MALFORMED: tuple[Case, ...] = (
    # framing: Transfer-Encoding, alone or with Content-Length
    Case("te-chunked-with-cl", post(TE + CL5, CHUNKED), 400),
    Case("cl-with-te-chunked", post(CL5 + TE, CHUNKED), 400),
    Case("te-chunked-with-cl-zero", post(TE + b"Content-Length: 0\r\n", CHUNKED), 400),
    Case("te-in-http10", b"POST / HTTP/1.0\r\n" + HOST + TE + b"\r\n" + CHUNKED, 400),
    Case("te-xchunked", post(te(b"xchunked"), CHUNKED), 501),
    Case("te-xchunked-with-cl", post(te(b"xchunked") + CL5, b"hello"), 501),
    Case("te-space-before-colon", post(b"Transfer-Encoding : chunked\r\n" + CL5, b"hello"), 400),
    Case("te-tab-before-colon", post(b"Transfer-Encoding\t: chunked\r\n", CHUNKED), 400),
    Case("te-chunked-then-identity", post(te(b"chunked, identity"), CHUNKED), 501),
    Case("te-chunked-twice", post(te(b"chunked, chunked"), CHUNKED), 501),
    Case("te-identity-with-cl", post(te(b"identity") + CL5, b"hello"), 501),
    Case("te-empty-with-cl", post(b"Transfer-Encoding:\r\n" + CL5, b"hello"), 501),
    Case("te-duplicate", post(TE + TE, CHUNKED), 400),
    Case("te-duplicate-with-cl", post(TE + te(b"identity") + CL5, b"hello"), 400),
    Case("te-obs-fold", post(b"Transfer-Encoding:\r\n chunked\r\n" + CL5, b"hello"), 400),
    Case("te-quoted", post(te(b'"chunked"'), CHUNKED), 501),
    Case("te-vertical-tab", post(te(b"chunked\x0b"), CHUNKED), 501),
    Case("te-bare-cr", post(te(b"chunked\rx"), CHUNKED), 400),
    # framing: Content-Length (Python's int() accepts "+5", " 5", "1_0")
    Case("cl-duplicate-different", post(CL5 + b"Content-Length: 6\r\n", b"hello!"), 400),
    # RFC 9110 §8.6 lets a recipient fold identical values or reject; nginx and llhttp reject
    Case("cl-duplicate-same", post(CL5 + CL5, b"hello"), 400),
    Case("cl-list-different", post(b"Content-Length: 5, 6\r\n", b"hello!"), 400),
    Case("cl-list-same", post(b"Content-Length: 5, 5\r\n", b"hello"), 400),
    Case("cl-plus", post(b"Content-Length: +5\r\n", b"hello"), 400),
    Case("cl-minus", post(b"Content-Length: -1\r\n"), 400),
    Case("cl-hex", post(b"Content-Length: 0x5\r\n", b"hello"), 400),
    Case("cl-underscore", post(b"Content-Length: 1_0\r\n", b"helloworld"), 400),
    Case("cl-inner-space", post(b"Content-Length: 1 0\r\n", b"helloworld"), 400),
    Case("cl-empty", post(b"Content-Length:\r\n"), 400),
    Case("cl-overflow", post(b"Content-Length: 99999999999999999999999\r\n"), 400),
    Case("cl-wraps-uint64-to-1", post(b"Content-Length: 18446744073709551617\r\n", b"h"), 400),
    Case("cl-space-before-colon", post(b"Content-Length : 5\r\n", b"hello"), 400),
    Case("cl-obs-fold", post(CL5 + b" 6\r\n", b"hello!"), 400),
    # chunked body (Python's int(x, 16) accepts "0x5", " 5", "1_0", "+5")
    Case("chunk-size-not-hex", chunked(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-negative", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-plus", chunked(b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-0x-prefix", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-underscore", chunked(b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"), 400),
    Case("chunk-size-leading-space", chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-size-overflow", chunked(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-ext-bare-cr", chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), 400),
    Case("chunk-data-missing-crlf", chunked(b"5\r\nhelloXX0\r\n\r\n"), 400),
    Case("chunk-data-overrun", chunked(b"3\r\nhello\r\n0\r\n\r\n"), 400),
    # header lines
    Case("obs-fold-space", get(b"X-Foo: a\r\n b\r\n"), 400),
    Case("obs-fold-tab", get(b"X-Foo: a\r\n\tb\r\n"), 400),
    Case("space-before-first-header", b"GET / HTTP/1.1\r\n x: y\r\n" + HOST + b"\r\n", 400),
    Case("bare-cr-in-value", get(b"X-Foo: a\rb\r\n"), 400),
    Case("nul-in-value", get(b"X-Foo: a\x00b\r\n"), 400),
    Case("name-with-space", get(b"X Foo: a\r\n"), 400),
    Case("name-with-tab", get(b"X\tFoo: a\r\n"), 400),
    Case("name-empty", get(b": a\r\n"), 400),
    Case("name-with-nul", get(b"X\x00Foo: a\r\n"), 400),
    Case("name-with-control-char", get(b"X\x01Foo: a\r\n"), 400),
    # Host (RFC 9112 §3.2: 400 for none in HTTP/1.1, more than one, or an invalid one)
    Case("host-missing", b"GET / HTTP/1.1\r\n\r\n", 400),
    Case("host-duplicate-different", get(b"Host: other.test\r\n"), 400),
    Case("host-duplicate-same", get(HOST), 400),
    Case("host-space-before-colon", get(host=b"Host : example.test\r\n"), 400),
    Case("host-with-space", get(host=b"Host: a b\r\n"), 400),
    Case("host-with-slash", get(host=b"Host: a/b\r\n"), 400),
    # request line
    Case("request-line-bare-cr", b"GET / HTTP/1.1\r" + HOST + b"\r\n", 400),
    Case("request-line-tab-after-method", line(b"GET\t/ HTTP/1.1"), 400),
    Case("request-line-tab-before-version", line(b"GET /\tHTTP/1.1"), 400),
    Case("request-line-leading-space", line(b" GET / HTTP/1.1"), 400),
    Case("request-line-trailing-word", line(b"GET / HTTP/1.1 x"), 400),
    Case("method-with-at", line(b"GE@T / HTTP/1.1"), 400),
    Case("method-with-paren", line(b"G(T / HTTP/1.1"), 400),
    Case("method-with-nul", line(b"GE\x00T / HTTP/1.1"), 400),
    Case("method-with-high-byte", line(b"G\xc9T / HTTP/1.1"), 400),
    Case("target-with-space", line(b"GET /a b HTTP/1.1"), 400),
    Case("target-with-control-char", line(b"GET /a\x01b HTTP/1.1"), 400),
    Case("target-with-nul", line(b"GET /a\x00b HTTP/1.1"), 400),
    Case("target-with-del", line(b"GET /a\x7fb HTTP/1.1"), 400),
    Case("target-without-slash", line(b"GET a HTTP/1.1"), 400),
    Case("target-empty", line(b"GET  HTTP/1.1"), 400),
    Case("target-asterisk-for-get", line(b"GET * HTTP/1.1"), 400),
    Case("target-authority-form-for-get", line(b"GET example.test:80 HTTP/1.1"), 400),
    # RFC 9110 §4.2.4: treat userinfo in an http(s) URI as an error
    Case("target-absolute-with-userinfo", line(b"GET http://u@other.test/ HTTP/1.1"), 400),
    Case("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    Case("version-2.0", line(b"GET / HTTP/2.0"), 505),
    Case("version-two-digit-major", line(b"GET / HTTP/11"), 505),
    Case("version-letter", line(b"GET / HTTP/x"), 400),
    Case("version-lowercase", line(b"GET / http/1.1"), 400),
    Case("version-no-minor", line(b"GET / HTTP/1"), 400),
    Case("version-dot-no-minor", line(b"GET / HTTP/1."), 400),
    Case("version-leading-zero", line(b"GET / HTTP/01.1"), 400),
    Case("version-trailing-letter", line(b"GET / HTTP/1.1a"), 400),
    Case("version-space-after-slash", line(b"GET / HTTP/ 1.1"), 400),
)

OVER_LIMIT: tuple[Case, ...] = (
    Case("request-line-over-8k", line(b"GET /" + b"a" * 9000 + b" HTTP/1.1"), 414, status=431),
    Case("header-line-over-8k", get(b"X-Big: " + b"a" * 9000 + b"\r\n"), 400, status=431),
    Case("body-over-1m", post(b"Content-Length: 1048577\r\n", b"a" * 1048577), 413, status=413),
)

NGINX_STRICTER: tuple[Case, ...] = (
    Case("method-lowercase", line(b"get / HTTP/1.1"), 400),  # a valid token, another method
    Case("te-gzip-then-chunked", post(te(b"gzip, chunked"), CHUNKED), 501),
    Case("te-identity-then-chunked", post(te(b"identity, chunked"), CHUNKED), 501),
    Case("host-empty", get(host=b"Host:\r\n"), 400),  # RFC 9112 §3.2 allows it
    Case("host-dot-dot", get(host=b"Host: ..\r\n"), 400),
    Case("target-dot-segments-above-root", line(b"GET /../x HTTP/1.1"), 400),
    Case("options-asterisk", line(b"OPTIONS * HTTP/1.1"), 400),
    Case("connect", line(b"CONNECT example.test:443 HTTP/1.1"), 400),
    Case("version-0.9-with-headers", line(b"GET / HTTP/0.9"), 400),
    Case("version-3.0", line(b"GET / HTTP/3.0"), 505),
)

ACCEPTED_BY_NGINX: tuple[Case, ...] = (
    Case("bare-lf-line-endings", b"GET / HTTP/1.1\nHost: example.test\n\n", 200),
    Case("bare-lf-after-request-line", b"GET / HTTP/1.1\n" + HOST + b"\r\n", 200),
    Case("bare-lf-after-header", b"GET / HTTP/1.1\r\nHost: example.test\n\r\n", 200),
    Case("cr-cr-lf-after-header", get(b"X-Foo: a\r\r\n"), 200),
    Case("chunk-size-trailing-space", chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 200),
    Case("chunk-size-bare-lf", chunked(b"5\nhello\r\n0\r\n\r\n"), 200),
    Case("chunk-ext-bare-lf", chunked(b"5;ext\nhello\r\n0\r\n\r\n"), 200),
    Case("chunk-data-bare-lf", chunked(b"5\r\nhello\n0\r\n\r\n"), 200),
    Case("last-chunk-bare-lf", chunked(b"5\r\nhello\r\n0\n\n"), 200),
    Case("trailer-without-colon", chunked(b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"), 200),
    Case("trailer-with-nul", chunked(b"5\r\nhello\r\n0\r\nX: a\x00b\r\n\r\n"), 200),
    Case("trailer-content-length", chunked(b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), 200),
    # nginx drops header lines whose names are not [A-Za-z0-9-] (ignore_invalid_headers on)
    Case("name-with-paren", get(b"X(Foo): a\r\n"), 200),
    Case("name-with-at", get(b"X@Foo: a\r\n"), 200),
    Case("name-with-high-byte", get(b"X\xffFoo: a\r\n"), 200),
    Case("header-without-colon", get(b"X-Foo\r\n"), 200),
    Case("value-with-control-char", get(b"X-Foo: a\x01b\r\n"), 200),
    Case("value-with-del", get(b"X-Foo: a\x7fb\r\n"), 200),
    Case("version-1.2", line(b"GET / HTTP/1.2"), 200),
    Case("version-1.10", line(b"GET / HTTP/1.10"), 200),
    Case("request-line-double-space", line(b"GET  / HTTP/1.1"), 200),
    Case("request-line-double-space-before-version", line(b"GET /  HTTP/1.1"), 200),
    Case("request-line-trailing-space", line(b"GET / HTTP/1.1 "), 200),
    Case("target-with-high-byte", line(b"GET /a\xffb HTTP/1.1"), 200),
    Case("target-with-fragment", line(b"GET /a#b HTTP/1.1"), 200),
    Case("target-absolute-other-host", line(b"GET http://other.test/ HTTP/1.1"), 200),
    Case("host-userinfo", get(host=b"Host: a@b\r\n"), 200),
    Case("host-two-colons", get(host=b"Host: a:b:c\r\n"), 200),
)


def lookalike(name: bytes, value: bytes) -> bytes:
    """A POST framed by Content-Length: 5, with the look-alike header before it."""
    return post(name + b": " + value + b"\r\n" + CL5, b"hello")


FRAMING_LOOKALIKES: tuple[Case, ...] = (
    Case("te-underscore", lookalike(b"Transfer_Encoding", b"chunked"), 200),
    Case("te-underscores-lowercase", lookalike(b"transfer_encoding", b"chunked"), 200),
    Case("te-triple-underscore", lookalike(b"Transfer___Encoding", b"chunked"), 200),
    Case("te-triple-hyphen", lookalike(b"Transfer---Encoding", b"chunked"), 200),
    Case("te-no-hyphen", lookalike(b"TransferEncoding", b"chunked"), 200),
    Case("te-leading-hyphen", lookalike(b"-Transfer-Encoding", b"chunked"), 200),
    Case("te-trailing-hyphen", lookalike(b"Transfer-Encoding-", b"chunked"), 200),
    Case("te-hyphen-and-underscore", lookalike(b"Transfer-_Encoding", b"chunked"), 200),
    Case("cl-underscore-name", lookalike(b"Content_Length", b"0"), 200),
    Case("cl-no-hyphen", lookalike(b"contentlength", b"0"), 200),
    Case("cl-double-hyphen", lookalike(b"Content--Length", b"0"), 200),
)

UNDERSCORE_NAMES: tuple[Case, ...] = (
    Case("underscore-xff", get(b"X_Forwarded_For: 203.0.113.9\r\n"), 200, status=200),
    Case("underscore-custom", get(b"X_Api_Key: secret\r\n"), 200, status=200),
    Case("underscore-leading", get(b"_Auth: x\r\n"), 200, status=200),
)

VALID: tuple[Case, ...] = (
    Case("get", get(), 200, status=200),
    Case("post-content-length", post(CL5, b"hello"), 200, status=200),
    Case("post-chunked", chunked(CHUNKED), 200, status=200),
)


# replaying a case


@dataclass(frozen=True)
class Reply:
    data: bytes  # everything the server sent
    closed: bool  # the server closed (or reset) the connection

    @property
    def status(self) -> int | None:
        parts = self.data.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return None
        return int(parts[1])

    def __str__(self) -> str:
        head = self.data.split(b"\r\n\r\n", 1)[0][:300]
        return f"status={self.status} closed={self.closed} head={head!r}"


def _response_end(data: bytes) -> int | None:
    """Where the first response ends, if its head is complete and it has a Content-Length."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    for field in data[:end].split(b"\r\n")[1:]:
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return end + 4 + int(value)
    return None


def exchange(
    port: int,
    raw: bytes,
    *,
    tls: ssl.SSLContext | None = None,
    timeout: float = 5.0,
    close_wait: float = 2.0,
) -> Reply:
    """Send `raw` on a new connection and read until the server closes or a timeout.

    After a complete response (Content-Length framed) the server has `close_wait` seconds
    to close; a server that keeps the connection open gets `closed=False`. Plain sockets
    send from a thread while reading, so a server that answers and closes early (413) is
    still heard; TLS sends first (an SSL object is not shared between threads).
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="localhost")

    def send() -> None:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server closed early; what it answered is still read below

    sender = threading.Thread(target=send, daemon=True)
    if tls is None:
        sender.start()
    else:
        send()
    data, closed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
            end = _response_end(data)
            if end is not None and len(data) >= end:
                deadline = min(deadline, time.monotonic() + close_wait)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        closed = True
    except TimeoutError:
        pass
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a sender still blocked in sendall
        except OSError:
            pass
        if tls is None:
            sender.join(timeout)
        sock.close()
    return Reply(data, closed)
