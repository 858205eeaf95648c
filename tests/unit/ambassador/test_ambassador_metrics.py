"""ambassador.metrics: /metrics as the ambassador serves it, written without
prometheus-client (the text it wrote before: `_total` counters, floats as "3.0", labels in
name order, `le` among them)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support import metrics

from ambassador.metrics import FAILURE_KINDS, registry_for
from podkit.proxy.stats import ProxyStats

PEER = 'a"b\\c\nd'  # escaped in the labels as the text format asks
ESCAPED = 'a\\"b\\\\c\\nd'


def views() -> list[dict[str, Any]]:
    return [
        {
            "group": "default",
            "server": PEER,
            "address": "http://127.0.0.1:1",
            "responses": {"200": 5, "502": 1},
            "failures": {"connect": 2},
            "latency": {"counts": [1] * 14, "total": 1.5},
            "available": True,
            "healthy": False,
            "effective_weight": 3,
            "active_requests": 1,
            "drain": False,
            "weight_share": 0.25,
            "ejected": True,
            "ejections": 7,
            "connections": 12,
            "sent_bytes": 123456789012,
            "received_bytes": 5,
        },
        {  # an http-mode view: no tcp counters; no group: "default"
            "server": "b",
            "address": "http://h:2",
            "responses": {},
            "failures": {},
            "latency": {"counts": [0] * 14, "total": 0.0},
            "available": False,
            "healthy": True,
            "effective_weight": 1,
            "active_requests": 0,
            "drain": True,
            "weight_share": 1.0,
            "ejected": False,
            "ejections": 0,
        },
    ]


def render() -> str:
    stats = ProxyStats()
    stats.request(b"GET", 200, 0.01)
    return registry_for(lambda: stats, views, lambda: 3)().decode()


def test_the_ambassadors_families() -> None:
    text = render()
    lines = set(text.splitlines())
    a = f'address="http://127.0.0.1:1",group="default",upstream="{ESCAPED}"'
    b = 'address="http://h:2",group="default",upstream="b"'
    for line in (
        'ambassador_requests_total{code="200",method="GET"} 1.0',
        'ambassador_request_duration_seconds_bucket{le="0.01"} 1.0',
        "# HELP ambassador_upstream_responses_total Responses from each upstream peer, by "
        "status code",
        "# TYPE ambassador_upstream_responses_total counter",
        f'ambassador_upstream_responses_total{{address="http://127.0.0.1:1",code="200",'
        f'group="default",upstream="{ESCAPED}"}} 5.0',
        f'ambassador_upstream_failures_total{{address="http://127.0.0.1:1",group="default",'
        f'kind="connect",upstream="{ESCAPED}"}} 2.0',
        "# TYPE ambassador_upstream_response_seconds histogram",
        f'ambassador_upstream_response_seconds_bucket{{address="http://127.0.0.1:1",'
        f'group="default",le="0.001",upstream="{ESCAPED}"}} 1.0',
        f'ambassador_upstream_response_seconds_bucket{{address="http://127.0.0.1:1",'
        f'group="default",le="+Inf",upstream="{ESCAPED}"}} 14.0',
        f"ambassador_upstream_response_seconds_count{{{a}}} 14.0",
        f"ambassador_upstream_response_seconds_sum{{{a}}} 1.5",
        f"ambassador_upstream_up{{{a}}} 1.0",
        f"ambassador_upstream_up{{{b}}} 0.0",
        f"ambassador_upstream_healthy{{{a}}} 0.0",
        f"ambassador_upstream_effective_weight{{{a}}} 3.0",
        f"ambassador_upstream_active_requests{{{a}}} 1.0",
        f"ambassador_upstream_draining{{{b}}} 1.0",
        f"ambassador_upstream_slow_start_share{{{a}}} 0.25",
        f"ambassador_upstream_ejected{{{a}}} 1.0",
        "# TYPE ambassador_upstream_ejections_total counter",
        f"ambassador_upstream_ejections_total{{{a}}} 7.0",
        f"ambassador_upstream_connections_total{{{a}}} 12.0",
        f"ambassador_upstream_connections_total{{{b}}} 0.0",
        f"ambassador_upstream_sent_bytes_total{{{a}}} 1.23456789012e+11",
        f"ambassador_upstream_received_bytes_total{{{a}}} 5.0",
        "ambassador_admin_writes_refused_total 3.0",
        "# TYPE process_open_fds gauge",
    ):
        assert line in lines, line
    assert 'ambassador_build_info{compiled="' in text and "_created" not in text
    families = metrics.parse(text)
    assert len(families["ambassador_upstream_failures_total"].samples) == 2 * len(FAILURE_KINDS)
    assert len(families["ambassador_upstream_response_seconds"].samples) == 2 * 16
    parsed = {f.name: f for f in text_string_to_metric_families(text)}  # valid text
    assert parsed["ambassador_upstream_responses"].type == "counter"
    assert parsed["ambassador_upstream_up"].type == "gauge"
    (bucket,) = [
        s
        for s in parsed["ambassador_upstream_response_seconds"].samples
        if s.labels.get("le") == "0.0025" and s.labels["upstream"] == PEER
    ]
    assert bucket.value == 2.0
