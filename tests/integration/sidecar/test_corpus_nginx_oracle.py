"""The corpus judged by nginx: each list in support/corpus.py is what nginx says it is.

nginx (Debian's nginx-light) proxies plain HTTP to a recording upstream, as the sidecar
will. A malformed case must get nginx's refusal, a closed connection, and leave the upstream
without a byte; a case nginx passes on belongs in `ACCEPTED_BY_NGINX`. The valid requests
prove the harness can tell the two apart. When a newer nginx changes its mind, these tests
name the case to move.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.corpus import (
    ACCEPTED_BY_NGINX,
    FRAMING_LOOKALIKES,
    MALFORMED,
    NGINX_STRICTER,
    OVER_LIMIT,
    UNDERSCORE_NAMES,
    VALID,
    Case,
    exchange,
    params,
)
from support.nginx import NginxProcess, nginx_running
from support.processes import free_port
from support.recording_upstream import RecordingUpstream

HTTP = """\
    access_log {dir}/access.log;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""


@pytest.fixture(scope="module")
def nginx(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxProcess]:
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()

    def answers() -> bool:
        return exchange(port, VALID[0].raw, timeout=1, close_wait=0).status == 200

    http = HTTP.format(dir=workdir, port=port, upstream=upstream.port)
    with nginx_running(workdir, port, http, answers) as process:
        yield process


def assert_refused(case: Case, nginx: NginxProcess, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(nginx.port, case.raw)
    context = f"{case.id}: {reply}\nnginx error.log:\n{nginx.log()[-1500:]}"
    assert reply.status == case.nginx, context
    assert reply.closed, context
    assert upstream.received() == b"", context
    assert nginx.proc.poll() is None, context


def assert_passed_on(case: Case, nginx: NginxProcess, upstream: RecordingUpstream) -> None:
    upstream.clear()
    reply = exchange(nginx.port, case.raw, close_wait=0)
    context = f"{case.id}: {reply}\nnginx error.log:\n{nginx.log()[-1500:]}"
    assert reply.status == 200 and reply.data.endswith(b"ok"), context
    assert upstream.requests == 1 and upstream.received(), context


@pytest.mark.parametrize("case", params(VALID))
def test_valid_requests_reach_the_upstream(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, nginx, upstream)
    method = case.raw.split(b" ", 1)[0]
    assert upstream.received().startswith(method + b" / HTTP/1.1\r\n")


@pytest.mark.parametrize("case", params(MALFORMED))
def test_malformed_is_refused(case: Case, nginx: NginxProcess, upstream: RecordingUpstream) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(OVER_LIMIT))
def test_over_limit_is_refused(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(NGINX_STRICTER))
def test_stricter_cases_are_refused_by_nginx(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    assert_refused(case, nginx, upstream)


@pytest.mark.parametrize("case", params(ACCEPTED_BY_NGINX))
def test_accepted_cases_are_passed_on_by_nginx(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, nginx, upstream)


def forwarded_names(upstream: RecordingUpstream) -> list[bytes]:
    head = upstream.received().split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return [line.split(b":", 1)[0] for line in head]


@pytest.mark.parametrize("case", params(FRAMING_LOOKALIKES))
def test_framing_lookalikes_never_frame_at_nginx(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    """nginx passes these on (the proxies refuse them) but frames by the real
    Content-Length: one request, its 5-byte body, the look-alike dropped when it has "_"
    and passed as an unknown header otherwise."""
    assert_passed_on(case, nginx, upstream)
    lookalike = case.raw.split(b"\r\n")[2].split(b":", 1)[0]
    names = forwarded_names(upstream)
    assert upstream.received().endswith(b"\r\n\r\nhello"), upstream.received()
    assert (lookalike in names) == (b"_" not in lookalike), names


@pytest.mark.parametrize("case", params(UNDERSCORE_NAMES))
def test_underscore_names_are_dropped_by_nginx(
    case: Case, nginx: NginxProcess, upstream: RecordingUpstream
) -> None:
    assert_passed_on(case, nginx, upstream)
    assert not [name for name in forwarded_names(upstream) if b"_" in name]


def test_corpus_shape() -> None:
    lists = (
        MALFORMED,
        OVER_LIMIT,
        NGINX_STRICTER,
        ACCEPTED_BY_NGINX,
        VALID,
        FRAMING_LOOKALIKES,
        UNDERSCORE_NAMES,
    )
    ids = [case.id for cases in lists for case in cases]
    assert len(ids) == len(set(ids)), "case ids are unique across the lists"
    raws = [case.raw for cases in lists for case in cases]
    assert len(raws) == len(set(raws)), "no request is in two lists"
    assert len(MALFORMED) >= 35
    assert {case.status for case in MALFORMED} == {400}
    assert {case.status for case in OVER_LIMIT} <= {413, 431}
    assert all(case.nginx != 200 for case in MALFORMED + OVER_LIMIT + NGINX_STRICTER)
    assert {case.status for case in FRAMING_LOOKALIKES} == {400}
