from __future__ import annotations

import pytest

from adapter.exposition import Exposition, escape_label, format_value, labels


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
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_label_escaping() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert labels((("cmd", "get"), ("val", 'x"y'))) == '{cmd="get",val="x\\"y"}'


def test_families_render_sorted_with_one_help_and_type_each() -> None:
    out = Exposition("redis")
    out.add("up", "gauge", "Up", 1.0)
    out.add("commands_total", "counter", "Calls", 3.0, labels((("cmd", "get"),)))
    out.add("commands_total", "counter", "Calls", 4.0, labels((("cmd", "set"),)))
    out.add("lat", "summary", "Lat", 10.0, labels((("cmd", "get"),)), suffix="_sum")
    assert out.render().decode() == (
        "# HELP redis_commands_total Calls\n# TYPE redis_commands_total counter\n"
        'redis_commands_total{cmd="get"} 3\nredis_commands_total{cmd="set"} 4\n'
        "# HELP redis_lat Lat\n# TYPE redis_lat summary\n"
        'redis_lat_sum{cmd="get"} 10\n'
        "# HELP redis_up Up\n# TYPE redis_up gauge\nredis_up 1\n"
    )
    assert "up" in out and "down" not in out
