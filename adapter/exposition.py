"""Prometheus text exposition built directly, one scrape at a time.

Why not prometheus-client objects: building and rendering ~600 samples through them costs
more than the whole Redis round trip, and client_python rewrites the `# TYPE` line of a
counter whose name lacks `_total` (redis_exporter's `redis_total_error_replies` is one), so
its names could not match redis_exporter's. Families are collected per scrape and rendered
sorted by name, as the Go client does; nothing outlives the scrape, so no stale series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal, NamedTuple

MetricType = Literal["gauge", "counter", "summary", "histogram", "untyped"]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """'{a="1",b="2"}' from (name, value) pairs; names are the caller's constants."""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs) + "}"


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def go_float(value: float) -> str:
    """`value` as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it: how the Go client
    writes a histogram's `le` label (1048576 → "1.048576e+06"), so the series are the same."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    shortest = Decimal(repr(abs(value)))  # the shortest digits that read back as `value`
    exponent = shortest.adjusted()
    digits = "".join(map(str, shortest.as_tuple().digits)).strip("0") or "0"
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:  # Go's rule for the shortest 'g' format
        tail = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{tail}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent >= 0:
        whole, frac = digits[: exponent + 1].ljust(exponent + 1, "0"), digits[exponent + 1 :]
    else:
        whole, frac = "0", "0" * (-exponent - 1) + digits
    return sign + whole + (f".{frac}" if frac else "")


class Family(NamedTuple):
    """A metric family declared once, beside the source that fills it: name (without the
    namespace), type and help, as redis_exporter's metricDescriptions table declares them."""

    name: str
    kind: MetricType
    help: str


def gauge(name: str, help_text: str = "") -> Family:
    return Family(name, "gauge", help_text or f"{name} metric")


class Exposition:
    """The families of one scrape, rendered to exposition text at the end."""

    __slots__ = ("_families", "namespace")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._families: dict[str, list[str]] = {}

    def add(
        self,
        name: str,
        kind: MetricType,
        help_text: str,
        value: float | str,
        label_text: str = "",
        *,
        suffix: str = "",
    ) -> None:
        """One sample of family `namespace_name`; `value` as a float or already-valid text.

        `suffix` is for summaries: `_sum` and `_count` samples belong to the family `name`.
        """
        full = f"{self.namespace}_{name}" if self.namespace else name
        lines = self._families.get(full)
        if lines is None:
            lines = self._families[full] = [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"]
        text = value if isinstance(value, str) else format_value(value)
        lines.append(f"{full}{suffix}{label_text} {text}")

    def put(
        self, family: Family, value: float | str, label_text: str = "", *, suffix: str = ""
    ) -> None:
        """One sample of a declared family."""
        self.add(family.name, family.kind, family.help, value, label_text, suffix=suffix)

    def __contains__(self, name: str) -> bool:
        return f"{self.namespace}_{name}" in self._families

    def render(self) -> bytes:
        parts = [lines for _, lines in sorted(self._families.items())]
        return ("\n".join(line for lines in parts for line in lines) + "\n").encode()
