"""podkit.exposition: the text format written directly; the proxies' conventions held against
prometheus-client's generate_latest, which wrote their /metrics before."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from podkit.exposition import (
    Exposition,
    Family,
    client_float,
    counter,
    escape_label,
    format_value,
    gauge,
    go_float,
    histogram,
    labels,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (42.0, "42"),
        (-1.0, "-1"),
        (1.5, "1.5"),
        (1e20, "1e+20"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (3, "3"),
        (1e15, "1000000000000000.0"),
        (-1e15, "-1000000000000000.0"),
        (999999999999999.0, "999999999999999"),
        (0.000637, "0.000637"),
        (-0.0, "0"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    "value",
    [
        0,
        3,
        -3,
        0.0,
        -0.0,
        1.5,
        0.000637,
        1e-05,
        123456.0,
        1234567.0,
        1e7,
        10_000_000,
        1.23456789012e11,
        1767225600.0,
        2**64 - 1,
        1e20,
        -1e20,
        -1234567.0,
        float("inf"),
        float("-inf"),
        float("nan"),
    ],
)
def test_client_float_is_prometheus_clients_format(value: float) -> None:
    assert client_float(value) == floatToGoString(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (131072, "131072"),
        (1048576, "1.048576e+06"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1796493898.0, "1.796493898e+09"),
        (-2.5, "-2.5"),
        (0, "0"),
        (float("inf"), "+Inf"),
    ],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


def test_label_escaping() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert labels((("cmd", "get"), ("val", 'x"y'))) == '{cmd="get",val="x\\"y"}'


def test_families_render_sorted_with_one_help_and_type_each() -> None:
    out = Exposition("redis")
    calls = Family("commands_total", "counter", "Calls")
    out.put(gauge("up", "Up"), 1.0)
    out.put(calls, 3.0, labels((("cmd", "get"),)))
    out.put(calls, 4.0, labels((("cmd", "set"),)))
    out.put(Family("lat", "summary", "Lat"), 10.0, labels((("cmd", "get"),)), suffix="_sum")
    assert out.render().decode() == (
        "# HELP redis_commands_total Calls\n# TYPE redis_commands_total counter\n"
        'redis_commands_total{cmd="get"} 3\nredis_commands_total{cmd="set"} 4\n'
        "# HELP redis_lat Lat\n# TYPE redis_lat summary\n"
        'redis_lat_sum{cmd="get"} 10\n'
        "# HELP redis_up Up\n# TYPE redis_up gauge\nredis_up 1\n"
    )
    assert "up" in out and "down" not in out


def test_without_a_namespace_and_with_text_values() -> None:
    out = Exposition("")
    out.put(gauge("b"), "1e+06")
    out.put(gauge("a", "A"), 2)
    out.put(gauge("a", "ignored: the first declaration gives the help"), 3)
    assert out.render().decode() == (
        "# HELP a A\n# TYPE a gauge\na 2\na 3\n# HELP b b metric\n# TYPE b gauge\nb 1e+06\n"
    )
    assert "a" in out and "redis_a" not in out


HELP = 'Help with a backslash \\ and a\nsecond line, and "quotes"'
PEER = 'a"b\\c\nd'
BUCKETS = [("0.001", 1.0), ("1.0", 3.0), ("10.0", 4.0), ("+Inf", 6.0)]


class Demo(Collector):
    """The families written below, as the proxies built them with prometheus-client."""

    def collect(self):  # type: ignore[no-untyped-def]
        requests = CounterMetricFamily("demo_requests", "Requests", labels=["method", "code"])
        requests.add_metric(["GET", "200"], 3)
        requests.add_metric(["POST", "502"], 12345678)
        yield requests
        yield CounterMetricFamily("demo_sent_bytes", HELP, value=10**7)
        yield GaugeMetricFamily("demo_connections", "Open", value=2)
        latency = HistogramMetricFamily("demo_seconds", "Latency", labels=["upstream", "group"])
        latency.add_metric([PEER, "default"], BUCKETS, 1.5)
        yield latency
        plain = HistogramMetricFamily("demo_duration_seconds", "Duration")
        plain.add_metric([], BUCKETS, 0.25)
        yield plain
        yield CounterMetricFamily("demo_refused", "None yet", labels=["reason"])


def test_the_proxies_families_read_as_prometheus_client_wrote_them() -> None:
    out = Exposition("demo", client_float)
    requests = counter("requests_total", "Requests")
    out.put(requests, 3, labels((("code", "200"), ("method", "GET"))))
    out.put(requests, 12345678, labels((("code", "502"), ("method", "POST"))))
    out.put(counter("sent_bytes_total", HELP), 10**7)
    out.put(gauge("connections", "Open"), 2)
    out.put_histogram(
        histogram("seconds", "Latency"), BUCKETS, 1.5, (("upstream", PEER), ("group", "default"))
    )
    out.put_histogram(histogram("duration_seconds", "Duration"), BUCKETS, 0.25)
    out.declare(counter("refused_total", "None yet"))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Demo())
    theirs = generate_latest(registry).decode()
    ours = out.render().decode()
    # The same text, family for family (ours in name order, theirs as collected).
    assert sorted(ours.split("# HELP ")) == sorted(theirs.split("# HELP "))
    assert 'demo_seconds_bucket{group="default",le="+Inf",upstream="a\\"b\\\\c\\nd"} 6.0' in ours
    assert "# HELP demo_sent_bytes_total Help with a backslash \\\\ and a\\nsecond" in ours
    assert "# TYPE demo_refused_total counter\n# HELP" in ours  # declared, no sample


def test_declared_families_without_samples_render_help_and_type_only() -> None:
    out = Exposition("x")
    out.declare(gauge("a", "A"), counter("b_total", "B"))
    out.put(counter("b_total", "B"), 2)
    out.declare(gauge("a", "declared again: nothing changes"))
    assert out.render().decode() == (
        "# HELP x_a A\n# TYPE x_a gauge\n"
        "# HELP x_b_total B\n# TYPE x_b_total counter\nx_b_total 2\n"
    )
