"""Failover on 5xx side by side with nginx, with the same proxy_next_upstream settings: the
same requests answered with the same statuses, the same ones retried (counted at recording
upstreams), and a POST never sent twice."""

from __future__ import annotations

from pathlib import Path

from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    CountingUpstream,
    StartAmbassador,
    StartCounting,
    StartNginx,
    start_ambassador_fixture,
    start_counting_fixture,
    start_nginx_fixture,
)

REQUESTS = [("GET", None), ("GET", None), ("POST", b"x=1"), ("GET", None), ("POST", b"x=2")] * 2


def run(
    request: object, upstreams: list[CountingUpstream]
) -> tuple[list[tuple[int, str | None]], list[tuple[int, int]]]:
    answers = []
    for method, body in REQUESTS:
        reply = request(method, "/orders", body)  # type: ignore[operator]
        answers.append((reply.status, reply.server))
    counts = [(u.requests("GET"), u.requests("POST")) for u in upstreams]
    return answers, counts


def three(start_counting: StartCounting) -> list[CountingUpstream]:
    ups = [start_counting("s1"), start_counting("s2"), start_counting("s3")]
    ups[0].status, ups[1].status = 503, 502  # s3 answers 200
    return ups


def test_5xx_failover_matches_nginx(
    tmp_path: Path,
    start_counting: StartCounting,
    start_nginx: StartNginx,
    start_ambassador: StartAmbassador,
) -> None:
    for conditions, tries in (
        ("error timeout http_502 http_503", 0),
        ("error timeout http_503", 0),
        ("error timeout http_502 http_503 non_idempotent", 0),
        ("error timeout http_502 http_503", 2),
    ):
        ups = three(start_counting)
        servers = [f"127.0.0.1:{u.port}" for u in ups]
        directives = f"proxy_next_upstream {conditions};\nproxy_next_upstream_tries {tries};"
        nginx = start_nginx(servers, directives)
        theirs = run(nginx.request, ups)

        ups = three(start_counting)
        path = tmp_path / f"ambassador-{len(conditions)}-{tries}.yaml"
        path.write_text(
            f"upstreams: [{', '.join(repr(u.url) for u in ups)}]\n"
            f"next_upstream: {conditions}\nnext_upstream_tries: {tries}\n"
        )
        ambassador = start_ambassador("--config", str(path))
        ours = run(ambassador.request, ups)
        assert ours == theirs, (conditions, tries)
        if "non_idempotent" not in conditions:
            posts = sum(n for _, n in ours[1])
            assert posts == REQUESTS.count(("POST", b"x=1")) * 2  # each POST sent once
