"""The agent's /metrics: plain counters bumped on the hot path (once per chunk or batch, not
per line), turned into metric families when scraped, plus gauges read from the live state
then (lag, files followed, buffer), so nothing is updated on a timer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from logagent.follow import Tailer
from podkit.buildinfo import register_build_info

DROP_REASONS = ("rotated_backlog", "truncated", "output_rejected")


@dataclass
class Stats:
    lines_read: Counter[str] = field(default_factory=Counter)  # by file
    bytes_read: Counter[str] = field(default_factory=Counter)
    lines_sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (output, file)
    bytes_sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    rotations: Counter[tuple[str, str]] = field(default_factory=Counter)  # (file, kind)
    cut_lines: Counter[str] = field(default_factory=Counter)  # by file
    parse_errors: Counter[str] = field(default_factory=Counter)  # by file
    dropped_lines: Counter[str] = field(default_factory=Counter)  # by reason
    dropped_bytes: Counter[str] = field(default_factory=Counter)
    output_errors: Counter[str] = field(default_factory=Counter)  # by output
    output_up: dict[str, int] = field(default_factory=dict)
    checkpoint_writes: int = 0
    buffered_bytes: int = 0


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    labels: list[str],
    values: Iterable[tuple[str | tuple[str, ...], float]],
) -> Metric:
    family = kind(name, doc, labels=labels)
    for label, value in values:
        family.add_metric([label] if isinstance(label, str) else list(label), value)
    return family


class AgentCollector(Collector):
    def __init__(self, stats: Stats, tailers: Callable[[], list[Tailer]]) -> None:
        self.stats = stats
        self.tailers = tailers

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        c, g = CounterMetricFamily, GaugeMetricFamily
        yield _family(c, "logagent_lines_read", "Lines read, by file", ["file"],
                      s.lines_read.items())
        yield _family(c, "logagent_bytes_read", "Bytes read, by file", ["file"],
                      s.bytes_read.items())
        yield _family(c, "logagent_lines_sent", "Records the output acknowledged",
                      ["output", "file"], s.lines_sent.items())
        yield _family(c, "logagent_bytes_sent", "Record bytes the output acknowledged",
                      ["output", "file"], s.bytes_sent.items())
        yield _family(c, "logagent_rotations", "Rotations seen, by kind (rename, remove, "
                      "truncate)", ["file", "kind"], s.rotations.items())
        yield _family(c, "logagent_lines_cut", "Lines longer than --max-line-bytes, cut",
                      ["file"], s.cut_lines.items())
        yield _family(c, "logagent_parse_errors", "Lines the parser did not match (sent raw)",
                      ["file"], s.parse_errors.items())
        dropped = {reason: 0 for reason in DROP_REASONS} | dict(s.dropped_lines)  # zeros shown
        yield _family(c, "logagent_dropped_lines", "Lines dropped, by reason (each also "
                      "logged)", ["reason"], dropped.items())
        yield _family(c, "logagent_dropped_bytes", "Bytes dropped, by reason", ["reason"],
                      s.dropped_bytes.items())
        yield _family(c, "logagent_output_errors", "Failed sends and connects, by output",
                      ["output"], s.output_errors.items())
        yield _family(g, "logagent_output_up", "1 while the output accepts records",
                      ["output"], s.output_up.items())
        tailers = self.tailers()
        lag: Counter[str] = Counter()
        for tailer in tailers:  # a rotated file and its successor share a path: summed
            lag[tailer.path] += tailer.lag
        yield _family(g, "logagent_lag_bytes", "Bytes in the file not yet acknowledged",
                      ["file"], lag.items())
        yield GaugeMetricFamily("logagent_files_followed", "Files open and followed",
                                value=len(tailers))
        yield GaugeMetricFamily("logagent_buffered_bytes", "Records read, not yet "
                                "acknowledged", value=s.buffered_bytes)
        yield CounterMetricFamily("logagent_checkpoint_writes", "Checkpoints written",
                                  value=s.checkpoint_writes)


def registry_for(stats: Stats, tailers: Callable[[], list[Tailer]]) -> Callable[[], bytes]:
    """What /metrics serves (podkit.admin_http), rendered per scrape from a registry of the
    agent's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(stats, tailers))
    ProcessCollector(registry=registry)
    register_build_info(registry, "logagent")
    return lambda: generate_latest(registry)
