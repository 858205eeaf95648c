"""The corpus judged by nginx: each list in support/corpus.py is what nginx says it is.

nginx (Debian's nginx-light) proxies plain HTTP to a recording upstream, as the sidecar
will. A malformed case must get nginx's refusal, a closed connection, and leave the upstream
without a byte; a case nginx passes on belongs in `ACCEPTED_BY_NGINX`. The valid requests
prove the harness can tell the two apart. When a newer nginx changes its mind, these tests
name the case to move.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.corpus import (
    ACCEPTED_BY_NGINX,
    MALFORMED,
    NGINX_STRICTER,
    OVER_LIMIT,
    VALID,
    Case,
    exchange,
    params,
)
from support.processes import free_port, wait_for
from support.recording_upstream import RecordingUpstream
from support.tools import require_binary

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    dir: Path

    def log(self) -> str:
        return (self.dir / "error.log").read_text(errors="replace")[-1500:]


@pytest.fixture(scope="module")
def nginx(upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = require_binary("nginx")
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(CONFIG.format(dir=workdir, port=port, upstream=upstream.port))
    with open(workdir / "stderr.log", "ab") as stderr:
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)],
            stdout=stderr,
            stderr=stderr,
        )
    server = Nginx(proc, port, workdir)

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited {proc.returncode}: {server.log()}")
        return exchange(port, VALID[0].raw, timeout=1, close_wait=0).status == 200

    try:
        wait_for(answers, what=f"nginx on port {port}")
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


def assert_refused(case: Case, nginx: Nginx, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(nginx.port, case.raw)
    context = f"{case.id}: {reply}\nnginx error.log:\n{nginx.log()}"
    assert reply.status == case.nginx, context
    assert reply.closed, context
    assert upstream.received() == b"", context
    assert nginx.proc.poll() is None, context


def assert_passed_on(case: Case, nginx: Nginx, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(nginx.port, case.raw, close_wait=0)
    context = f"{case.id}: {reply}\nnginx error.log:\n{nginx.log()}"
    assert reply.status == 200 and reply.data.endswith(b"ok"), context
    assert upstream.requests == 1 and upstream.received(), context


@pytest.mark.parametrize("case", params(VALID))
def test_valid_requests_reach_the_upstream(
    case: Case, nginx: Nginx, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, nginx, upstream)
    method = case.raw.split(b" ", 1)[0]
    assert upstream.received().startswith(method + b" / HTTP/1.1\r\n")


@pytest.mark.parametrize("case", params(MALFORMED))
def test_malformed_is_refused(case: Case, nginx: Nginx, upstream: RecordingUpstream) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(OVER_LIMIT))
def test_over_limit_is_refused(case: Case, nginx: Nginx, upstream: RecordingUpstream) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(NGINX_STRICTER))
def test_stricter_cases_are_refused_by_nginx(
    case: Case, nginx: Nginx, upstream: RecordingUpstream
) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(ACCEPTED_BY_NGINX))
def test_accepted_cases_are_passed_on_by_nginx(
    case: Case, nginx: Nginx, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, nginx, upstream)


def test_corpus_shape() -> None:
    lists = (MALFORMED, OVER_LIMIT, NGINX_STRICTER, ACCEPTED_BY_NGINX, VALID)
    ids = [case.id for cases in lists for case in cases]
    assert len(ids) == len(set(ids)), "case ids are unique across the lists"
    raws = [case.raw for cases in lists for case in cases]
    assert len(raws) == len(set(raws)), "no request is in two lists"
    assert len(MALFORMED) >= 35
    assert {case.status for case in MALFORMED} == {400}
    assert {case.status for case in OVER_LIMIT} <= {413, 431}
    assert all(case.nginx != 200 for case in MALFORMED + OVER_LIMIT + NGINX_STRICTER)
