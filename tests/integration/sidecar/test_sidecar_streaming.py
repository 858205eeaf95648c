"""100 MB through the sidecar each way, in bounded memory: back-pressure, not buffering.

An upload streamed from a generator (Content-Length, then chunked) reaches the echo server
whole (it answers with the SHA-256); a download read slowly by the client keeps the sidecar's
resident memory within a small bound while the upstream could send far faster.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from support.sidecar_fixtures import (  # noqa: F401 - fixtures, used by name
    Sidecar,
    StartSidecar,
    echo_fixture,
    pki_fixture,
    start_echo_fixture,
    start_sidecar_fixture,
)

from echoserver.generate import CHUNK

SIZE = 100 * 1024 * 1024
BLOCK = os.urandom(1024 * 1024)
# What the sidecar may add to its resident memory while 100 MB pass: buffers, not the body.
GROWTH_BOUND = 40 * 1024 * 1024
SLOW_PART = 8 * 1024 * 1024  # read this much 64 KiB at a time with a pause between reads
READ = 64 * 1024


def memory(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


@pytest.fixture
def streaming(start_sidecar: StartSidecar) -> Sidecar:
    return start_sidecar("--max-body-size", "0", "--read-timeout", "60s")


def https(sidecar: Sidecar) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("localhost", sidecar.port, context=sidecar.tls, timeout=60)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100mb_upload_streams_through(streaming: Sidecar, chunked: bool) -> None:
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for _ in range(SIZE // len(BLOCK)):
            digest.update(BLOCK)
            yield BLOCK

    before = memory(streaming.pid, "VmRSS")
    headers = {} if chunked else {"Content-Length": str(SIZE)}
    with closing(https(streaming)) as conn:
        conn.request("POST", "/upload", body=body(), headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        answer = response.read()
    assert response.status == 200, answer
    assert json.loads(answer) == {"body_bytes": SIZE, "body_sha256": digest.hexdigest()}
    growth = memory(streaming.pid, "VmHWM") - before
    assert growth < GROWTH_BOUND, f"the sidecar grew by {growth / 2**20:.1f} MiB"


def test_100mb_download_read_slowly_keeps_the_sidecar_small(streaming: Sidecar) -> None:
    expected = hashlib.sha256()
    for _ in range(SIZE // len(CHUNK)):
        expected.update(CHUNK)
    got = hashlib.sha256()
    received = 0
    before = memory(streaming.pid, "VmRSS")
    with closing(https(streaming)) as conn:
        conn.request("GET", f"/bytes/{SIZE}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(SIZE)
        while received < SLOW_PART:
            data = response.read(READ)
            got.update(data)
            received += len(data)
            time.sleep(0.01)  # a slow reader: the upstream could fill the sidecar meanwhile
        during = memory(streaming.pid, "VmRSS") - before
        while data := response.read(1024 * 1024):
            got.update(data)
            received += len(data)
    assert received == SIZE
    assert got.hexdigest() == expected.hexdigest()
    assert during < GROWTH_BOUND, f"the sidecar grew by {during / 2**20:.1f} MiB while slow"
    growth = memory(streaming.pid, "VmHWM") - before
    assert growth < GROWTH_BOUND, f"the sidecar's peak grew by {growth / 2**20:.1f} MiB"
