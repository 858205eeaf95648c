"""The syslog output against a real rsyslog (imtcp, octet-counted RFC 5424; TLS with its gtls
driver): delivery, an outage of the receiver, and the framing of odd lines.

The outage lasts LOGAGENT_TEST_OUTAGE seconds: 30 by default, the scenario the agent is built
for (a receiver restarting); `LOGAGENT_TEST_OUTAGE=5 pytest -k receiver_down` for a quick run.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from support.logagent_procs import Agent, Rsyslog, Writer, wait_all
from support.processes import wait_for
from support.tools import require

OUTAGE = float(os.environ.get("LOGAGENT_TEST_OUTAGE", "30"))


def syslog_args(server: Rsyslog, *extra: str) -> tuple[str, ...]:
    return ("--output", "syslog", "--syslog-address", f"127.0.0.1:{server.port}", *extra)


def test_lines_arrive_in_rsyslog(
    agents: Callable[..., Agent], logs_dir: Path, rsyslog: Rsyslog
) -> None:
    log = logs_dir / "app.log"
    Writer(log, 5000).run()
    agent = agents("--path", str(log), *syslog_args(rsyslog)).start()
    result = wait_all(rsyslog.read, 5000)
    assert not result.lost and result.duplicates == 0, str(result)
    assert agent.stdout() == b""  # syslog only: nothing on stdout, logs on stderr
    sent = 'logagent_lines_sent_total{file="' + str(log) + '",output="syslog"}'
    assert agent.metric(sent) == 5000
    assert agent.metric('logagent_output_up{output="syslog"}') == 1


def test_receiver_down_then_back(
    agents: Callable[..., Agent], logs_dir: Path, rsyslog: Rsyslog
) -> None:
    """rsyslog stops for OUTAGE seconds while the application keeps writing: the agent
    buffers, pauses reading when its buffer is full, reconnects, and loses nothing."""
    log = logs_dir / "app.log"
    rate = 2000.0
    total = int(rate * (OUTAGE + 3))
    # A buffer smaller than the outage's lines: reading must pause (back-pressure).
    agent = agents(
        "--path", str(log), *syslog_args(rsyslog),
        "--buffer-bytes", "512k", "--batch-bytes", "64k", "--max-line-bytes", "64k",
    ).start()
    writer = Writer(log, total, rate=rate)
    writer.start()
    wait_for(lambda: b"seq=00001000" in rsyslog.read(), timeout=20, what="the first lines")
    rsyslog.stop()
    time.sleep(OUTAGE)
    assert agent.metric("logagent_output_errors_total") >= 1
    assert agent.metric('logagent_output_up{output="syslog"}') == 0
    assert agent.metric("logagent_buffered_bytes") <= 512 * 1024 + 256 * 1024
    rsyslog.start()
    writer.finish()
    result = wait_all(rsyslog.read, total, timeout=40)
    assert not result.lost and result.duplicates == 0, str(result)
    assert agent.metric("logagent_dropped_lines_total") == 0
    assert "syslog" in agent.stderr() and "back after" in agent.stderr()


@pytest.fixture
def tls_rsyslog(rsyslog_binary: str, tmp_path: Path) -> tuple[Rsyslog, Path]:
    # The gtls driver is its own Debian package (rsyslog-gnutls), not a dependency of rsyslog.
    require("rsyslog's gtls driver", bool(glob.glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")),
            "install the Debian package rsyslog-gnutls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path / "tls"
    d.mkdir()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    server = Rsyslog(rsyslog_binary, tmp_path / "rsyslog-tls",
                     tls=(d / "ca.pem", d / "cert.pem", d / "key.pem"))
    return server, d / "ca.pem"


def test_tls_to_rsyslog_gtls(
    agents: Callable[..., Agent], logs_dir: Path, tls_rsyslog: tuple[Rsyslog, Path]
) -> None:
    server, ca = tls_rsyslog
    server.start()
    try:
        log = logs_dir / "app.log"
        Writer(log, 3000).run()
        agent = agents(
            "--path", str(log), *syslog_args(server),
            "--syslog-tls", "--syslog-tls-ca-file", str(ca),
            "--syslog-tls-server-name", "localhost",
        ).start()
        result = wait_all(server.read, 3000)
        assert not result.lost and result.duplicates == 0, str(result)
        assert "connected to syslog tls://" in agent.stderr()
    finally:
        server.stop()


def test_tls_refuses_an_unknown_certificate(
    agents: Callable[..., Agent], logs_dir: Path, tls_rsyslog: tuple[Rsyslog, Path], tmp_path: Path
) -> None:
    server, _ = tls_rsyslog
    server.start()
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    try:
        log = logs_dir / "app.log"
        Writer(log, 10).run()
        agent = agents("--path", str(log), *syslog_args(server), "--syslog-tls",
                       "--syslog-tls-ca-file", str(other_ca),
                       "--shutdown-timeout", "500ms").start()
        wait_for(lambda: agent.metric("logagent_output_errors_total") >= 1, what="a TLS error")
        assert server.read() == b""
        assert "CERTIFICATE_VERIFY_FAILED" in agent.stderr()
    finally:
        server.stop()


def test_multiline_and_metadata_in_structured_data(
    agents: Callable[..., Agent], logs_dir: Path, rsyslog: Rsyslog
) -> None:
    log = logs_dir / "app.log"
    log.write_bytes(
        b"seq=00000001 Traceback (most recent call last):\n"
        b'  File "x.py", line 1\n'
        b"ValueError: boom\n"
        b"seq=00000002 next record\n"
    )
    conf = rsyslog.workdir / "rsyslog.conf"
    assert conf.exists()
    agent = agents(
        "--path", str(log), *syslog_args(rsyslog), "--multiline-start", "seq=",
        "--multiline-timeout", "200ms",
        env={"POD_NAME": "web-1", "POD_NAMESPACE": "shop", "CONTAINER_NAME": "app"},
    ).start()
    result = wait_all(rsyslog.read, 2)
    assert not result.lost and result.duplicates == 0, str(result)
    received = rsyslog.read()
    # rsyslog escapes the LF inside a message as #012 when it writes the file.
    assert b"Traceback (most recent call last):#012" in received
    assert received.count(b"\n") == 2
    assert agent.metric('logagent_lines_sent_total{file="' + str(log) + '",output="syslog"}') == 2
