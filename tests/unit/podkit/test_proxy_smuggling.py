"""Header names that could frame a request differently downstream: the classification of a
name (once, then cached) and what the engine does with each kind."""

from __future__ import annotations

import pytest
from proxy_fakes import Harness

from podkit.proxy import ProxySettings
from podkit.proxy.headers import H, classifier, classify

POST = b"POST / HTTP/1.1\r\nHost: a\r\n%sContent-Length: 5\r\n\r\nhello"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"Content-Length", H.CONTENT_LENGTH),
        (b"TRANSFER-ENCODING", H.TRANSFER_ENCODING),
        (b"Transfer_Encoding", H.LOOKALIKE),
        (b"transfer___encoding", H.LOOKALIKE),
        (b"Transfer---Encoding", H.LOOKALIKE),
        (b"TransferEncoding", H.LOOKALIKE),
        (b"-Transfer-Encoding", H.LOOKALIKE),
        (b"Content_Length", H.LOOKALIKE),
        (b"CONTENTLENGTH", H.LOOKALIKE),
        (b"Content-Length-", H.LOOKALIKE),
        (b"X_Api_Key", H.UNDERSCORE),
        (b"_", H.UNDERSCORE),
        (b"X_Forwarded_For", H.STRIP),  # folds into one of the proxy's own: never passed
        (b"keep_alive", H.STRIP),
        (b"X_Client_Cert_Subject", H.STRIP),
        (b"X-Api-Key", None),
        (b"Content-Lengths", None),
        (b"X-Content-Length", None),
    ],
)
def test_classification_of_a_name(name: bytes, kind: H | None) -> None:
    table = classifier((b"x-client-cert-subject",))
    assert classify(table, name) is kind
    assert table[name] is kind  # cached as spelled: the next request pays one lookup


def test_x_request_id_is_the_proxys_only_with_the_access_log() -> None:
    assert classify(classifier((), request_id=True), b"X-Request-Id") is H.REQUEST_ID
    assert classify(classifier((), request_id=True), b"X_Request_Id") is H.STRIP
    assert classify(classifier(()), b"X-Request-Id") is None


@pytest.mark.parametrize(
    "name", [b"Transfer_Encoding", b"Transfer---Encoding", b"contentlength", b"Content_Length"]
)
async def test_a_framing_lookalike_is_refused_and_counted(name: bytes) -> None:
    h = Harness()
    await h.send(POST % (name + b": chunked\r\n"))
    assert h.received().startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert h.transport.closed and h.upstream.transports == []
    assert h.server.stats.rejected == {"framing_lookalike": 1}


async def test_a_lookalike_is_refused_even_when_underscores_are_passed() -> None:
    h = Harness(ProxySettings(underscores_in_headers=True))
    await h.send(POST % b"Transfer_Encoding: chunked\r\n")
    assert h.received().startswith(b"HTTP/1.1 400 ")


async def test_names_with_underscores_are_dropped_by_default() -> None:
    h = Harness()
    await h.send(POST % b"X_Api_Key: 1\r\nX_Forwarded_For: 6.6.6.6\r\nX-Ok: 1\r\n")
    sent = h.upstream.sent()
    assert b"X_Api_Key" not in sent and b"6.6.6.6" not in sent
    assert b"X-Ok: 1\r\n" in sent and sent.endswith(b"\r\n\r\nhello")


async def test_names_with_underscores_pass_when_asked_but_never_the_proxys_own() -> None:
    h = Harness(ProxySettings(underscores_in_headers=True))
    await h.send(POST % b"X_Api_Key: 1\r\nX_Forwarded_For: 6.6.6.6\r\n")
    sent = h.upstream.sent()
    assert b"X_Api_Key: 1\r\n" in sent and b"6.6.6.6" not in sent


async def test_response_headers_with_underscores_or_lookalike_names_go_on() -> None:
    """The upstream's framing is its own Content-Length; the client gets its headers."""
    h = Harness()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await h.reply(
        b"HTTP/1.1 200 OK\r\nX_Trace: 1\r\nTransfer_Encoding: x\r\nContent-Length: 2\r\n\r\nok"
    )
    response = h.received()
    assert b"X_Trace: 1\r\n" in response and b"Transfer_Encoding: x\r\n" in response
    assert response.endswith(b"\r\n\r\nok")
