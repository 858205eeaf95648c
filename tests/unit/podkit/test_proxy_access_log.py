"""The access log: nginx's combined format plus the proxy's extras, or JSON fields; the
request id; records written once per loop iteration."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import subprocess
import sys

from proxy_fakes import Harness, settle

from podkit.proxy import ProxySettings
from podkit.proxy.access import PIPE_BUF, AccessLog, escape
from podkit.proxy.head import RequestHead

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
GET = (
    b"GET /a?b=1 HTTP/1.1\r\nHost: a\r\nReferer: https://r.example/\r\n"
    b'User-Agent: curl/8 "quoted"\r\nX-Request-Id: from-client\r\n\r\n'
)
# $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
# "$http_referer" "$http_user_agent", then rt= ua= us= rid=
COMBINED = re.compile(
    r"(?P<addr>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" '
    r'"(?P<agent>(?:[^"\\]|\\x[0-9A-F]{2})*)" rt=(?P<rt>\d+\.\d{3}) ua="(?P<ua>[^"]*)" '
    r'us="(?P<us>[^"]*)" rid="(?P<rid>[^"]*)"\n'
)


def logged(settings: ProxySettings | None = None) -> tuple[Harness, list[bytes]]:
    h = Harness(settings or ProxySettings())
    writes: list[bytes] = []
    assert h.server.ctx.access is not None
    h.server.ctx.access.sink = writes.append
    return h, writes


def upstream_request_id(sent: bytes) -> bytes:
    ids = [line for line in sent.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
    assert len(ids) == 1, sent
    return ids[0].split(b":", 1)[1].strip()


async def test_text_record_is_nginx_combined_plus_extras() -> None:
    h, writes = logged()
    await h.send(GET)
    rid = upstream_request_id(h.upstream.sent())
    await h.reply(OK)
    await settle()
    (line,) = writes
    m = COMBINED.fullmatch(line.decode())
    assert m is not None, line
    assert m["addr"] == "10.0.0.7" and m["request"] == "GET /a?b=1 HTTP/1.1"
    assert (m["status"], m["bytes"], m["referer"]) == ("200", "5", "https://r.example/")
    assert m["agent"] == r"curl/8 \x22quoted\x22"  # nginx's escaping
    assert (m["ua"], m["us"]) == ("upstream.test:8080", "200")
    # from an untrusted peer, X-Request-Id is replaced by the proxy's own: 32 hex digits
    assert m["rid"] == rid.decode() and re.fullmatch(r"[0-9a-f]{32}", m["rid"])


async def test_json_record_has_real_fields() -> None:
    h, writes = logged(ProxySettings(access_log_format="json"))
    await h.send(GET)
    await h.reply(OK)
    await settle()
    record = json.loads(writes[0])
    assert record["logger"] == "access"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
    expected = {
        "remote_addr": "10.0.0.7",
        "request_method": "GET",
        "request_uri": "/a?b=1",
        "server_protocol": "HTTP/1.1",
        "status": 200,
        "body_bytes_sent": 5,
        "http_referer": "https://r.example/",
        "http_user_agent": 'curl/8 "quoted"',
        "upstream_addr": "upstream.test:8080",
        "upstream_status": 200,
    }
    assert {key: record[key] for key in expected} == expected
    assert isinstance(record["request_time"], float) and len(record["request_id"]) == 32


async def test_a_trusted_peers_request_id_is_kept_and_passed_on() -> None:
    h, writes = logged(ProxySettings(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),)))
    await h.send(GET)
    assert upstream_request_id(h.upstream.sent()) == b"from-client"
    await h.reply(OK)
    await settle()
    assert b'rid="from-client"' in writes[0]


async def test_answers_of_the_proxy_itself_are_logged_without_upstream_status() -> None:
    h, writes = logged()
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n")
    await settle()
    m = COMBINED.fullmatch(writes[0].decode())
    assert m is not None, writes
    assert (m["status"], m["ua"], m["us"]) == ("400", "-", "-")
    assert int(m["bytes"]) > 0  # the canned answer's body
    h, writes = logged(ProxySettings(connect_timeout=1))
    h.upstream.refuse = True
    await h.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await settle()
    m = COMBINED.fullmatch(writes[0].decode())
    assert m is not None, writes
    assert (m["status"], m["ua"], m["us"]) == ("502", "upstream.test:8080", "-")


async def test_without_the_access_log_x_request_id_is_an_ordinary_header() -> None:
    h = Harness(ProxySettings(access_log=False))
    assert h.server.ctx.access is None
    await h.send(GET)
    assert upstream_request_id(h.upstream.sent()) == b"from-client"


async def test_records_of_one_loop_iteration_are_one_write_cut_at_pipe_buf() -> None:
    writes: list[bytes] = []
    log = AccessLog("text", writes.append)
    head = RequestHead("192.0.2.1")
    head.method, head.url = b"GET", b"/" + b"a" * 1000
    for _ in range(10):  # ~1 KiB each
        log.record(head, 200, 0, 0.001, "", 0)
    assert writes == []  # nothing written until the loop turns
    await asyncio.sleep(0)
    assert len(writes) == 4 and all(len(w) <= PIPE_BUF for w in writes)  # 3 lines each
    lines = b"".join(writes).split(b"\n")
    assert len(lines) == 11 and all(w.endswith(b"\n") for w in writes)


def test_escape_as_nginx() -> None:
    assert escape(b"plain text/1.0") == "plain text/1.0"
    assert escape(b'a"b\\c\x01\xff') == r"a\x22b\x5Cc\x01\xFF"


def test_stdout_gets_each_byte_once() -> None:
    """Through a pipe, as a container runtime reads it (a compiled build once wrote twice)."""
    data = b"".join(b"line %d\n" % i for i in range(20000))
    code = "import sys; from podkit.proxy.access import write_stdout; "
    code += "write_stdout(sys.stdin.buffer.read())"
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
