"""The sidecar's access log as a process writes it: on by default in nginx's `combined`
format plus rt= ua= us= rid=, JSON fields with --log-format json, none with --access-log
false; the request id in the record is the one the main container got."""

from __future__ import annotations

import json
import re

from support.processes import wait_for
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Sidecar,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    read_reply,
    start_echo_fixture,
    start_sidecar_fixture,
)

REQUEST = (
    b"GET /page?format=json HTTP/1.1\r\nHost: localhost\r\nUser-Agent: probe/1.0\r\n"
    b"Referer: https://from.example/\r\nX-Request-Id: forged\r\nConnection: close\r\n\r\n"
)
COMBINED = re.compile(
    r"127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"GET /page\?format=json HTTP/1\.1" 200 (?P<bytes>\d+) "https://from\.example/" '
    r'"probe/1\.0" rt=\d+\.\d{3} ua="127\.0\.0\.1:(?P<port>\d+)" us="200" '
    r'rid="(?P<rid>[0-9a-f]{32})"'
)


def request(sidecar: Sidecar) -> tuple[str, int]:
    """One request: the X-Request-Id the main container saw, and the body's size."""
    with sidecar.connect() as sock:
        sock.sendall(REQUEST)
        reply = read_reply(sock.makefile("rb"))
    assert reply.status == 200, sidecar.log()[-2000:]
    headers = json.loads(reply.body)["headers"]
    (rid,) = [value for name, value in headers if name.lower() == "x-request-id"]
    return rid, len(reply.body)


def test_text_record_is_nginx_combined_with_extras(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar()  # TLS, the access log's default
    rid, size = request(sidecar)
    assert rid != "forged"  # the client is not a trusted proxy: its id is replaced
    wait_for(lambda: COMBINED.search(sidecar.log()) is not None, what="the access log record")
    match = COMBINED.search(sidecar.log())
    assert match is not None
    assert match["rid"] == rid and int(match["bytes"]) == size


def test_json_record_has_fields_of_its_own(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--log-format", "json", plain=True)
    rid, size = request(sidecar)

    def records() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in sidecar.log().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "access"]

    wait_for(lambda: len(records()) == 1, what="the access log record")
    (record,) = records()
    assert "message" not in record
    assert record["request_id"] == rid and record["body_bytes_sent"] == size
    assert record["remote_addr"] == "127.0.0.1" and record["status"] == 200
    assert record["http_user_agent"] == "probe/1.0"
    assert record["http_referer"] == "https://from.example/"
    assert record["server_protocol"] == "HTTP/1.1" and record["upstream_status"] == 200


def test_access_log_off(start_sidecar: StartSidecar) -> None:
    sidecar = start_sidecar("--access-log", "false", plain=True)
    rid, _ = request(sidecar)
    assert rid == "forged"  # without the log, X-Request-Id is an ordinary header
    assert "probe/1.0" not in sidecar.log()
