"""latency.py: LATENCY LATEST and Redis 7's LATENCY HISTOGRAM as redis_exporter exports them."""

from __future__ import annotations

import pytest
from support import metrics

from adapter import latency
from podkit.exposition import Exposition

HISTOGRAM_REPLY = [
    b"get",
    [b"calls", 5, b"histogram_usec", [1, 2, 2, 4, 1048576, 5]],
    b"config|get",
    [b"calls", 1, b"histogram_usec", [8, 1]],
]
SECTIONS = {
    "commandstats": {
        "cmdstat_get": "calls=5,usec=40,usec_per_call=8.00,rejected_calls=0,failed_calls=0",
        "cmdstat_getdel": "calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0",
        "cmdstat_config|get": "calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0",
        "cmdstat_get-odd": "calls=1,usec=100,usec_per_call=1.00,rejected_calls=0,failed_calls=0",
    }
}


def test_histogram_buckets_sum_and_count() -> None:
    out = Exposition("redis")
    latency.add_histogram(out, HISTOGRAM_REPLY, SECTIONS)
    text = out.render().decode()
    assert "# TYPE redis_commands_latencies_usec histogram\n" in text
    parsed = metrics.parse(text)
    get = {
        lbl["le"]: v
        for n, lbl, v in parsed["redis_commands_latencies_usec"].samples
        if n.endswith("_bucket") and lbl["cmd"] == "get"
    }
    assert get == {"1": 2, "2": 4, "1.048576e+06": 5, "+Inf": 5}
    # redis_exporter sums every command whose name starts with "get" (its regexp's names)
    assert 'redis_commands_latencies_usec_sum{cmd="get"} 42\n' in text
    assert 'redis_commands_latencies_usec_count{cmd="get"} 5\n' in text
    assert 'redis_commands_latencies_usec_sum{cmd="config|get"} 9\n' in text


@pytest.mark.parametrize("reply", [ValueError("ERR unknown subcommand"), [b"get", b"junk"]])
def test_histogram_refused_or_malformed_exports_nothing(reply: object) -> None:
    out = Exposition("redis")
    latency.add_histogram(out, reply, SECTIONS)
    assert out.render() == b"\n"


def test_latest() -> None:
    out = Exposition("redis")
    latency.add_latency(out, [[b"command", 1700000000, 25, 40]])
    text = out.render().decode()
    assert 'redis_latency_spike_last{event_name="command"} 1700000000\n' in text
    assert 'redis_latency_spike_duration_seconds{event_name="command"} 0.025\n' in text
