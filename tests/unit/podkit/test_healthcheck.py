"""podkit.healthcheck, the images' HEALTHCHECK: the address from the service's own variable,
200 → exit 0, anything else → exit 1, one line either way, bounded by --timeout."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podkit import healthcheck
from podkit.healthcheck import TARGETS, check, main, url


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        pytest.param("sidecar", {}, "http://127.0.0.1:9000/healthz", id="default-port"),
        pytest.param(
            "sidecar",
            {"SIDECAR_ADMIN_LISTEN": "0.0.0.0:9100"},
            "http://127.0.0.1:9100/healthz",
            id="wildcard-host",
        ),
        pytest.param(
            "ambassador",
            {"AMBASSADOR_ADMIN_LISTEN": "10.1.2.3:9001"},
            "http://10.1.2.3:9001/healthz",
            id="given-host",
        ),
        pytest.param(
            "echoserver",
            {"ECHO_LISTEN": "127.0.0.1:8080"},
            "http://127.0.0.1:8080/healthz",
            id="echo-listen",
        ),
        pytest.param(
            "gitsync",
            {"GITSYNC_HTTP_BIND": ":1234"},
            "http://127.0.0.1:1234/healthz",
            id="git-sync-style-bind",
        ),
        pytest.param(
            "logagent",
            {"LOGAGENT_ADMIN_ADDRESS": "[::]:9881"},
            "http://127.0.0.1:9881/healthz",
            id="ipv6-wildcard",
        ),
        pytest.param(
            "logagent",
            {"LOGAGENT_ADMIN_ADDRESS": "[::1]:9881"},
            "http://[::1]:9881/healthz",
            id="ipv6-host",
        ),
        pytest.param("adapter", {}, "http://127.0.0.1:9121/healthz", id="adapter-plain"),
        pytest.param(
            "adapter",
            {
                "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": ":9122",
                "REDIS_EXPORTER_TLS_SERVER_CERT_FILE": "/secrets/tls.crt",
            },
            "https://127.0.0.1:9122/healthz",
            id="adapter-tls",
        ),
    ],
)
def test_url_follows_the_services_own_variable(
    service: str, env: dict[str, str], expected: str
) -> None:
    assert url(TARGETS[service], env) == expected


def test_every_image_has_a_target() -> None:
    # The services whose images call `python -m podkit.healthcheck <service>`.
    assert set(TARGETS) == {"adapter", "sidecar", "ambassador", "echoserver", "gitsync", "logagent"}


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def opener_raising(exc: BaseException) -> Any:
    def opener(address: str, **kwargs: Any) -> FakeResponse:
        raise exc

    return opener


@pytest.mark.parametrize(
    ("opener", "reason"),
    [
        pytest.param(
            opener_raising(urllib.error.URLError(ConnectionRefusedError(111, "refused"))),
            "refused",
            id="refused",
        ),
        pytest.param(
            opener_raising(urllib.error.HTTPError("u", 503, "Service Unavailable", {}, None)),  # type: ignore[arg-type]
            "answered 503",
            id="503",
        ),
        pytest.param(opener_raising(TimeoutError()), "no answer within 2s", id="timeout"),
        pytest.param(lambda address, **kw: FakeResponse(204), "answered 204", id="not-200"),
    ],
)
def test_anything_but_200_exits_1_with_one_line(
    opener: Any, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sidecar"], env={}, opener=opener) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("unhealthy: http://127.0.0.1:9000/healthz")
    assert reason in out


def test_200_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    def opener(address: str, **kwargs: Any) -> FakeResponse:
        seen.update(kwargs, address=address)
        return FakeResponse(200)

    assert (
        main(["gitsync", "--timeout", "0.5"], env={"GITSYNC_HTTP_BIND": ":2021"}, opener=opener)
        == 0
    )
    assert capsys.readouterr().out == "healthy: http://127.0.0.1:2021/healthz answered 200\n"
    assert seen["address"] == "http://127.0.0.1:2021/healthz"
    assert seen["timeout"] == 0.5
    assert seen["context"] is None  # plain HTTP


def test_readiness_path(capsys: pytest.CaptureFixture[str]) -> None:
    def opener(address: str, **kwargs: Any) -> FakeResponse:
        return FakeResponse(200 if address.endswith("/readyz") else 500)

    env = {"ECHO_LISTEN": "127.0.0.1:8080"}
    assert main(["echoserver", "--path", "/readyz"], env=env, opener=opener) == 0
    assert "http://127.0.0.1:8080/readyz" in capsys.readouterr().out
    assert main(["echoserver"], env=env, opener=opener) == 1


def test_tls_is_asked_without_verifying_the_services_own_certificate() -> None:
    seen: dict[str, Any] = {}

    def opener(address: str, **kwargs: Any) -> FakeResponse:
        seen.update(kwargs)
        return FakeResponse(200)

    assert check("https://127.0.0.1:9121/healthz", 2, opener) is None
    assert seen["context"].verify_mode == 0 and seen["context"].check_hostname is False


def test_an_unknown_service_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nginx"], env={})
    assert exc.value.code == 2


# -- against a real socket on the loopback, in process -------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    Handler.delay = 0.0
    srv.shutdown()
    srv.server_close()


def test_a_real_server(server: http.server.ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    assert main(["logagent"], env={"LOGAGENT_ADMIN_ADDRESS": f"127.0.0.1:{port}"}) == 0


def test_a_slow_server_times_out(
    server: http.server.ThreadingHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    Handler.delay = 1.0
    port = server.server_address[1]
    started = time.monotonic()
    code = main(
        ["logagent", "--timeout", "0.2"], env={"LOGAGENT_ADMIN_ADDRESS": f"127.0.0.1:{port}"}
    )
    assert code == 1 and time.monotonic() - started < 0.9
    assert "unhealthy:" in capsys.readouterr().out


def test_a_closed_port_fails() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert check(f"http://127.0.0.1:{port}/healthz", 1) is not None


def test_module_has_no_service_imports() -> None:
    # The shared package never imports a service: the table holds names only.
    source = Path(healthcheck.__file__).read_text()
    for service in TARGETS:
        assert f"import {service}" not in source and f"from {service}" not in source
