"""A small reader of Prometheus text exposition, exact about names (no `_total` folding).

prometheus_client's parser renames counter families, which would hide the very differences
the comparisons with redis_exporter look for.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from support.tools import require_binary

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def label_names(self) -> set[str]:
        return {k for _, labels, _ in self.samples for k in labels if k not in ("quantile", "le")}


# process_* values that move between two reads a few microseconds apart.
MOVING_PROCESS_VALUES = (
    "process_virtual_memory_bytes ",
    "process_resident_memory_bytes ",
    "process_cpu_",
)


def without_moving_values(text: str) -> list[str]:
    """The exposition's lines, the values that move between two reads cut off: for holding
    text written by hand against prometheus-client's, read a moment apart."""
    return [
        line.rsplit(" ", 1)[0] if line.startswith(MOVING_PROCESS_VALUES) else line
        for line in text.splitlines()
    ]


def parse(text: str) -> dict[str, Family]:
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            current = families.setdefault(name, Family(name))
            current.help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            current = families.setdefault(name, Family(name))
            current.type = kind.strip()
        elif line.startswith("#"):
            continue
        else:
            m = _SAMPLE.match(line)
            if m is None:
                raise ValueError(f"not a sample line: {line!r}")
            name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
            labels = dict(_LABEL.findall(labels_text))
            family = families.get(name)
            if family is None:
                base = re.sub(r"_(sum|count|bucket|created)$", "", name)
                family = families.setdefault(base, Family(base))
            family.samples.append((name, labels, float(value)))
    return families


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    matches = [
        v
        for fam in families.values()
        for n, lbl, v in fam.samples
        if n == name and all(lbl.get(k) == want for k, want in labels.items())
    ]
    if len(matches) != 1:
        raise KeyError(f"{name}{labels}: {len(matches)} samples")
    return matches[0]


def promtool_findings(text: str) -> str:
    """What `promtool check metrics` says of an exposition (its output; "" when clean)."""
    result = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 or output, f"promtool failed silently ({result.returncode})"
    return output
