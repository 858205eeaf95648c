"""e2e tier: the demo as `docker compose up` starts it (docker-compose.yml at the repo root)."""

from __future__ import annotations

import subprocess

import pytest
from support import images
from support.tools import require


@pytest.fixture(scope="session")
def demo_images(docker_client: object) -> dict[str, str]:
    """Every image docker-compose.yml runs, built once per session; names as in .env."""
    try:
        version = subprocess.run(
            ["docker", "compose", "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        ok, why = version.returncode == 0, version.stderr.strip()
    except OSError as exc:
        ok, why = False, str(exc)
    require("docker compose (v2)", ok, why or "install it with scripts/bootstrap-host.sh")
    return images.build("adapter", "redis", "prometheus")
