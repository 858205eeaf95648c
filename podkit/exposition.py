"""Prometheus text exposition built directly, one scrape at a time, for every service that
serves its own /metrics without prometheus-client: the adapter and the two proxies.

Why not prometheus-client objects: in the adapter, building and rendering ~600 samples
through them costs more than the whole Redis round trip, and client_python rewrites the
`# TYPE` line of a counter whose name lacks `_total` (redis_exporter's
`redis_total_error_replies` is one), so its names could not match redis_exporter's. In the
proxies, importing it costs ~5 MiB of resident memory (it brings http.server, wsgiref,
urllib.request, email...), a sixth of an idle ambassador. Families are collected per scrape
and rendered sorted by name, as the Go client does; nothing outlives the scrape, so no stale
series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

MetricType = Literal["gauge", "counter", "summary", "histogram", "untyped"]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Pairs = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def escape_help(text: str) -> str:
    if "\\" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text


def labels(pairs: Iterable[tuple[str, str]]) -> str:
    """'{a="1",b="2"}' from (name, value) pairs; names are the caller's constants."""
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs) + "}"


def format_value(value: float) -> str:
    """The adapter's format, redis_exporter's: whole numbers without a fraction ("3")."""
    if value.__class__ is float:  # the common case first: a scrape formats ~700 values
        if value.is_integer() and -1e15 < value < 1e15:
            return str(int(value))
        if value == value and value not in (math.inf, -math.inf):
            return repr(value)
    elif isinstance(value, int):
        return str(value)
    elif value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def client_float(value: float) -> str:
    """`value` as prometheus-client's floatToGoString writes it ("3.0", "1e+07"): the
    proxies' format since they began, so their samples read as they always did."""
    d = float(value)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def go_float(value: float) -> str:
    """`value` as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it: how the Go client
    writes a histogram's `le` label (1048576 → "1.048576e+06"), so the series are the same."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    # Imported here: only the adapter's latency histograms need it, and the proxies, which
    # import this module too, are kept small.
    from decimal import Decimal

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
    namespace), type and help, as redis_exporter's metricDescriptions table declares them.
    A counter's name is the one its samples carry, `_total` and all."""

    name: str
    kind: MetricType
    help: str


def gauge(name: str, help_text: str = "") -> Family:
    return Family(name, "gauge", help_text or f"{name} metric")


def counter(name: str, help_text: str) -> Family:
    return Family(name, "counter", help_text)


def histogram(name: str, help_text: str) -> Family:
    return Family(name, "histogram", help_text)


class Exposition:
    """The families of one scrape, rendered to exposition text at the end.

    A sample is kept as its line's tail (suffix, labels, value); the family's full name is
    put in front of every tail by one `join` at render time, so nothing is formatted twice.
    `number` formats the values: `format_value` (the adapter's), or `client_float` (the
    proxies').
    """

    __slots__ = ("_declared", "_number", "_prefix", "_samples", "namespace")

    def __init__(self, namespace: str, number: Callable[[float], str] = format_value) -> None:
        self.namespace = namespace
        self._prefix = f"{namespace}_" if namespace else ""
        self._number = number
        # Keyed by the name without the namespace: sorting those sorts the full names.
        self._declared: dict[str, Family] = {}
        self._samples: dict[str, list[str]] = {}

    def put(
        self, family: Family, value: float | str, label_text: str = "", *, suffix: str = ""
    ) -> None:
        """One sample of a declared family; `value` as a number or already-valid text.

        `suffix` is for summaries and histograms: `_sum`, `_count` and `_bucket` samples
        belong to the family `name`. The first family declared under a name gives its help.
        """
        tails = self._samples.get(family.name)
        if tails is None:
            tails = self._samples[family.name] = []
            self._declared[family.name] = family
        text = value if isinstance(value, str) else self._number(value)
        tails.append(f"{suffix}{label_text} {text}")

    def declare(self, *families: Family) -> None:
        """Families rendered even without a sample (their HELP and TYPE lines), as
        prometheus-client renders a labelled family before its first child."""
        for family in families:
            if family.name not in self._samples:
                self._samples[family.name] = []
                self._declared[family.name] = family

    def put_histogram(
        self,
        family: Family,
        buckets: Iterable[tuple[str, float]],
        total: float,
        pairs: Pairs = (),
    ) -> None:
        """A histogram's samples as client_python writes them: one `_bucket` per (le,
        cumulative count), `+Inf` last, then `_count` and `_sum`. Labels are written in
        name order, `le` among them, as client_python sorts them."""
        count = 0.0
        for le, count in buckets:
            self.put(family, count, labels(sorted((*pairs, ("le", le)))), suffix="_bucket")
        label_text = labels(sorted(pairs)) if pairs else ""
        self.put(family, count, label_text, suffix="_count")
        self.put(family, total, label_text, suffix="_sum")

    def __contains__(self, name: str) -> bool:
        return name in self._samples

    def render(self) -> bytes:
        if not self._samples:
            return b"\n"  # as it always was: an empty exposition is one newline
        chunks = []
        for name in sorted(self._samples):
            family = self._declared[name]
            full = self._prefix + name
            chunks.append(
                f"# HELP {full} {escape_help(family.help)}\n# TYPE {full} {family.kind}\n"
            )
            tails = self._samples[name]
            if tails:  # none only for a family declared and left empty
                chunks.append(full)
                chunks.append(f"\n{full}".join(tails))
                chunks.append("\n")
        return "".join(chunks).encode()
