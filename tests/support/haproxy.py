"""Debian's HAProxy as a real PROXY protocol sender: tcp mode, `send-proxy-v2` to the proxy
under test, one process in the foreground, stopped when the test is done with it."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.processes import free_port, wait_for
from support.tools import require_binary

HAPROXY = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server proxy 127.0.0.1:{target} send-proxy-v2
"""


@contextmanager
def haproxy_in_front(workdir: Path, target: int) -> Iterator[int]:
    """HAProxy on a free port, in tcp mode, sending PROXY v2 to `target`; yields its port."""
    binary = require_binary("haproxy")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "haproxy.cfg"
    conf.write_text(HAPROXY.format(port=port, target=target))
    with open(workdir / "haproxy.log", "ab") as log:
        proc = subprocess.Popen([binary, "-db", "-f", str(conf)], stdout=log, stderr=log)
    try:

        def listening() -> bool:
            assert proc.poll() is None, (workdir / "haproxy.log").read_text()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, what="haproxy")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
