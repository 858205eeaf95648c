"""Every flag redis_exporter 1.45 has (read from its own -h) is accepted by the adapter, in
the Go spelling (-flag) and the double-dash one (--flag)."""

from __future__ import annotations

import re
import subprocess

import pytest
from support.tools import require_binary

from adapter.config import DESCRIPTION, PROG, AdapterConfig
from podkit.options import build_parser

# "  -name type" (a value follows) or "  -name" (a bool), as Go's flag package prints them.
_FLAG = re.compile(r"^  -([\w.-]+)(?: (\w+))?$", re.MULTILINE)


def redis_exporter_flags() -> dict[str, bool]:
    """Flag name → whether it takes a value."""
    result = subprocess.run(
        [require_binary("prometheus-redis-exporter"), "-h"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    flags = {m.group(1): m.group(2) is not None for m in _FLAG.finditer(result.stderr)}
    assert len(flags) > 30, result.stderr
    return flags


def test_every_redis_exporter_flag_is_accepted_in_both_spellings() -> None:
    parser = build_parser(AdapterConfig, PROG, DESCRIPTION)
    refused = []
    for name, takes_value in redis_exporter_flags().items():
        if name == "version":  # handled before parsing: prints the version, exits 0
            continue
        for spelling in (f"-{name}", f"--{name}"):
            argv = [spelling, "x"] if takes_value else [spelling]
            try:
                parser.parse_args(argv)
            except SystemExit:
                refused.append(spelling)
    assert not refused


@pytest.mark.parametrize("spelling", ["-version", "--version"])
def test_version(spelling: str) -> None:
    from adapter.__main__ import main

    main([spelling])  # returns: no exit status other than 0
