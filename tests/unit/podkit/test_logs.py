"""podkit.logs: a malformed request to any of the services' aiohttp servers is one warning
line, not an error with a traceback."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from podkit import logs


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("info", "text")
    yield
    logging.getLogger("aiohttp.server").filters.clear()
    root.handlers[:], root.level = handlers, level


async def test_a_malformed_request_is_one_warning_line(
    configured: None, caplog: pytest.LogCaptureFixture
) -> None:
    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.server"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")  # no Host
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.0 400 ")
            writer.close()
    finally:
        await runner.cleanup()
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in records] == [
        ("WARNING", "bad request from 127.0.0.1: Missing 'Host' header in request.", None)
    ]


def aiohttp_error(exc: BaseException) -> logging.LogRecord:
    """The record aiohttp's server logs when a request handler raised `exc`."""
    try:
        raise exc
    except BaseException:
        return logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request from %s",
            ("10.0.0.7",),
            sys.exc_info(),
        )


def test_a_client_gone_mid_request_is_one_info_line() -> None:
    record = aiohttp_error(ClientConnectionResetError("Cannot write to closing transport"))
    assert logs.ClientErrors().filter(record)
    assert (record.levelname, record.getMessage(), record.exc_info) == (
        "INFO",
        "client 10.0.0.7 went away: Cannot write to closing transport",
        None,
    )


def test_other_errors_keep_their_traceback() -> None:
    record = aiohttp_error(KeyError("a bug"))
    assert logs.ClientErrors().filter(record)
    assert record.levelname == "ERROR" and record.exc_info is not None


def test_configure_sets_up_stderr_levels_and_the_filter_once(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = logging.getLogger("podkit.test.earlier")  # made before: must still log
    logs.configure("warning", "json")  # again, as a second call would
    root = logging.getLogger()
    assert root.level == logging.WARNING and len(root.handlers) == 1
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    assert isinstance(handler.formatter, logs.JsonFormatter)
    assert logging.getLogger("aiohttp.access").level == logging.WARNING
    filters = logging.getLogger("aiohttp.server").filters
    assert [type(f) for f in filters] == [logs.ClientErrors]
    earlier.info("not shown")
    earlier.warning("shown")
    assert not earlier.disabled
    err = capsys.readouterr().err
    assert '"message": "shown"' in err and "not shown" not in err


def test_text_lines(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "text")  # here: the handler writes to the stderr capsys holds now
    logging.getLogger("podkit.test").info("hello %s", "world")
    assert capsys.readouterr().err.endswith(" INFO    podkit.test: hello world\n")
