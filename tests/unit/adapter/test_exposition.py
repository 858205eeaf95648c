from __future__ import annotations

import pytest

from adapter.exposition import Exposition, Family, escape_label, format_value, gauge, labels


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
