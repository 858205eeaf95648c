"""The sidecar against the corpus: every malformed request gets 400, a closed connection, and
not one byte reaches the upstream; over-limit requests get 431 or 413 the same way.

The corpus is nginx-checked (test_corpus_nginx_oracle.py). The sidecar runs as a process in
`--plain` mode for the whole corpus, and with TLS from trustme for a sample of it.
"""

from __future__ import annotations

import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from support.corpus import (
    FRAMING_LOOKALIKES,
    MALFORMED,
    OVER_LIMIT,
    UNDERSCORE_NAMES,
    VALID,
    Case,
    exchange,
    get,
    params,
)
from support.processes import Service, free_port
from support.recording_upstream import RecordingUpstream

# a sample of the corpus that also runs over TLS: one of each kind
TLS_SAMPLE = (
    "te-chunked-with-cl",
    "cl-duplicate-different",
    "chunk-size-0x-prefix",
    "obs-fold-space",
    "bare-cr-in-value",
    "host-missing",
    "request-line-tab-after-method",
)
# nginx limits the head per line (8 KiB each, 32 KiB in all) and passes this on; the sidecar's
# --max-header-size counts the whole head
HEAD_OVER_8K_IN_MANY_LINES = get(b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 100) for i in range(90)))


@dataclass
class Sidecar:
    service: Service  # its port is the admin port, where readiness is asked
    port: int  # --listen
    tls: ssl.SSLContext | None = None

    def context(self, case: Case, reply: object) -> str:
        return f"{case.id}: {reply}\nsidecar log:\n{self.service.log()[-1500:]}"


def start(workdir: Path, upstream: RecordingUpstream, *args: str) -> Sidecar:
    port, admin = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "sidecar",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        f"http://127.0.0.1:{upstream.port}",
        "--admin-listen",
        f"127.0.0.1:{admin}",
        # the limits OVER_LIMIT is sized for, stated rather than left to the defaults
        "--max-header-size",
        "8192",
        "--max-body-size",
        "1m",
        *args,
    ]
    service = Service(argv, admin, workdir / "sidecar.log")
    return Sidecar(service.start(ready_path="/healthz"), port)


@pytest.fixture(scope="module")
def plain(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    sidecar = start(tmp_path_factory.mktemp("sidecar-plain"), upstream, "--plain")
    yield sidecar
    sidecar.service.stop()


@pytest.fixture(scope="module")
def tls(upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    workdir = tmp_path_factory.mktemp("sidecar-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_file))
    sidecar = start(workdir, upstream, "--cert-file", str(cert_file), "--key-file", str(key_file))
    sidecar.tls = ssl.create_default_context()
    ca.configure_trust(sidecar.tls)
    yield sidecar
    sidecar.service.stop()


def assert_refused(case: Case, sidecar: Sidecar, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(sidecar.port, case.raw, tls=sidecar.tls)
    time.sleep(0.05)  # anything wrongly passed on has reached the recorder by now
    context = sidecar.context(case, reply)
    assert reply.status == case.status, context
    assert reply.closed, context
    assert upstream.received() == b"", context
    assert sidecar.service.proc is not None and sidecar.service.proc.poll() is None, context


def assert_passed_on(case: Case, sidecar: Sidecar, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(sidecar.port, case.raw, tls=sidecar.tls, close_wait=0)
    context = sidecar.context(case, reply)
    assert reply.status == 200 and reply.data.endswith(b"ok"), context
    method = case.raw.split(b" ", 1)[0]
    assert upstream.requests == 1, context
    assert upstream.received().startswith(method + b" / HTTP/1.1\r\n"), context


@pytest.mark.parametrize("case", params(VALID))
def test_valid_requests_reach_the_upstream(
    case: Case, plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, plain, upstream)


@pytest.mark.parametrize("case", params(MALFORMED))
def test_malformed_gets_400_and_nothing_upstream(
    case: Case, plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_refused(case, plain, upstream)


@pytest.mark.parametrize("case", params(OVER_LIMIT))
def test_over_limit_gets_its_status_and_nothing_upstream(
    case: Case, plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_refused(case, plain, upstream)


@pytest.mark.parametrize("case", params(FRAMING_LOOKALIKES))
def test_framing_lookalike_gets_400_and_nothing_upstream(
    case: Case, plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_refused(case, plain, upstream)


@pytest.mark.parametrize("case", params(UNDERSCORE_NAMES))
def test_underscore_names_are_dropped_and_the_request_passed_on(
    case: Case, plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, plain, upstream)
    head = upstream.received().split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    assert not [line for line in head if b"_" in line.split(b":", 1)[0]], head


def test_refusals_are_counted_by_reason(plain: Sidecar, upstream: RecordingUpstream) -> None:
    assert_refused(FRAMING_LOOKALIKES[0], plain, upstream)
    _, text = plain.service.get("/metrics")
    counted = [
        line
        for line in text.splitlines()
        if line.startswith('sidecar_rejected_requests_total{reason="framing_lookalike"}')
    ]
    assert counted and float(counted[0].split()[-1]) >= 1, text


def test_head_over_8k_across_many_lines_gets_431(
    plain: Sidecar, upstream: RecordingUpstream
) -> None:
    assert len(HEAD_OVER_8K_IN_MANY_LINES) > 8192
    case = Case("head-over-8k-in-many-lines", HEAD_OVER_8K_IN_MANY_LINES, 200, status=431)
    assert_refused(case, plain, upstream)


@pytest.mark.parametrize("case", params(VALID[:1]))
def test_valid_request_over_tls_reaches_the_upstream(
    case: Case, tls: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, tls, upstream)


@pytest.mark.parametrize("case", params({c.id: c for c in MALFORMED}[i] for i in TLS_SAMPLE))
def test_malformed_over_tls_gets_400_and_nothing_upstream(
    case: Case, tls: Sidecar, upstream: RecordingUpstream
) -> None:
    assert_refused(case, tls, upstream)
