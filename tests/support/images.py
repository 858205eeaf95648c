"""The images of the container and e2e tiers: built by scripts/build-images.sh, named in .env.

The script picks the mode (official bases from a registry, or local stand-ins offline) and
writes the image names to .env; the tests read them from there, so they run the images a
plain `docker compose up` would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A fresh offline machine makes the Debian base, downloads wheels and builds every image.
BUILD_TIMEOUT = 900.0


def build(*names: str) -> dict[str, str]:
    """Build (or find up to date) the named images; return .env's variables."""
    try:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-images.sh"), *names],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/build-images.sh took over {BUILD_TIMEOUT:.0f}s: {exc}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/build-images.sh {' '.join(names)} failed "
            f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return read_env()


def read_env(path: Path = ROOT / ".env") -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (quotes stripped, comments skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.lstrip().startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env
