"""The proxies' admin server byte for byte: requests fed into its protocol on a fake
transport, the answers read back."""

from __future__ import annotations

import asyncio

import pytest
from proxy_fakes import FakeTransport, settle

from podkit.admin_http import AdminConnection, AdminServer, Request, Response, admin_routes
from podkit.health import Health


async def ask(server: AdminServer, data: bytes) -> tuple[bytes, FakeTransport]:
    conn = AdminConnection(server)
    transport = FakeTransport(conn)
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(data)
    await settle()
    return transport.take(), transport


def admin(ready: bool = True, reason: str | None = None) -> AdminServer:
    def metrics() -> bytes:
        return b"# TYPE demo_things_total counter\ndemo_things_total 3.0\n"

    async def check() -> str | None:
        return reason

    return AdminServer(admin_routes(Health(ready=ready, check=check), metrics))


async def test_health_ready_and_metrics() -> None:
    server = admin()
    answer, transport = await ask(server, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok\n")
    assert not transport.closed  # kept alive
    answer, _ = await ask(server, b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    answer, _ = await ask(server, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in answer
    assert b"demo_things_total 3.0" in answer


@pytest.mark.parametrize(
    ("ready", "reason", "said"),
    [(False, None, b"starting or shutting down"), (True, b"upstream down", b"upstream down")],
)
async def test_not_ready_says_why(ready: bool, reason: bytes | None, said: bytes) -> None:
    server = admin(ready, reason.decode() if reason else None)
    answer, _ = await ask(server, b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert answer.endswith(b"not ready: " + said + b"\n")


async def test_pipelined_requests_are_answered_in_order_and_head_has_no_body() -> None:
    answer, _ = await ask(
        admin(),
        b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    first, second, third = answer.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK") and first.endswith(b"Content-Length: 3\r\n\r\n")
    assert second.startswith(b"404 Not Found")
    assert third.startswith(b"405 Method Not Allowed") and b"Allow: GET, HEAD" in third
    assert b"Connection: close" in third


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 400, id="malformed"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 9000, 431, id="head-too-large"),
    ],
)
async def test_bad_requests_are_refused_and_closed(data: bytes, status: int) -> None:
    answer, transport = await ask(admin(), data)
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert transport.closed


async def test_a_failing_handler_is_a_500_and_the_server_goes_on() -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("boom")

    server = AdminServer({"/x": broken})
    answer, transport = await ask(server, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ") and not transport.closed


async def test_a_real_socket() -> None:
    server = admin()
    await server.start("127.0.0.1", 0)
    assert server._server is not None
    port = server._server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (await reader.read()).endswith(b"\r\n\r\nok\n")  # HTTP/1.0: closed after
    writer.close()
    await server.close()
