"""The echo server as a process: command line, environment, startup errors, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import aiohttp
from support.processes import Service, wait_for

if TYPE_CHECKING:
    from conftest import StartEcho


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "echoserver", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_help_lists_flags_and_env_vars() -> None:
    result = run("--help")
    assert result.returncode == 0
    for text in ("--listen", "ECHO_LISTEN", "--name", "ECHO_NAME", "--access-log"):
        assert text in result.stdout


def test_bad_values_stop_startup_with_one_line() -> None:
    result = run("--listen", "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "echoserver: invalid value 'nowhere' for --listen / ECHO_LISTEN (from --listen): "
        "expected host:port, got 'nowhere'"
    ]
    result = run(env={"PATH": "/usr/bin:/bin", "ECHO_LOG_FORMAT": "xml"})
    assert result.returncode == 2 and "(from $ECHO_LOG_FORMAT)" in result.stderr


def test_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_name_from_the_environment(start_echo: StartEcho) -> None:
    service = start_echo(env={"ECHO_NAME": "server2"})
    status, body = service.get("/anything")
    assert status == 200 and body.startswith("server: server2\nGET /anything HTTP/1.1\n")


def test_access_log_is_opt_in(start_echo: StartEcho) -> None:
    quiet = start_echo()
    loud = start_echo("--access-log", "--log-format", "json")
    for service in (quiet, loud):
        assert service.get("/hello?x=1")[0] == 200
    wait_for(lambda: "GET /hello?x=1 HTTP/1.1" in loud.log(), 5, "an access log line")
    line = next(line for line in loud.log().splitlines() if "/hello?x=1" in line)
    assert json.loads(line)["logger"] == "aiohttp.access"
    assert "/hello" not in quiet.log()


def test_sigterm_lets_a_request_in_flight_finish(echo: Service) -> None:
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as conn:
        conn.sendall(b"GET /slow?delay=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # the request is in the handler, sleeping
        started = time.monotonic()
        assert echo.proc is not None
        echo.proc.send_signal(signal.SIGTERM)
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"slept 1s\n")
    assert echo.proc.wait(10) == 0  # not echo.stop(): a second SIGTERM is not the test
    assert time.monotonic() - started < 5
    assert "stopped" in echo.log()


async def test_sigterm_with_an_open_websocket_exits_at_once(echo: Service) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{echo.base}/ws") as ws:
            await ws.send_str("hi")
            assert await ws.receive_str(timeout=5) == "hi"
            started = time.monotonic()
            assert echo.proc is not None
            echo.proc.send_signal(signal.SIGTERM)
            message = await ws.receive(timeout=5)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == aiohttp.WSCloseCode.GOING_AWAY
    assert await asyncio.to_thread(echo.proc.wait, 5) == 0
    assert time.monotonic() - started < 3  # not the 10 s drain bound
