"""A docker-compose.yml project for the e2e tier: its own name and free host ports, brought
up with `--wait` and always taken down."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support.images import ROOT
from support.processes import free_port

COMPOSE_FILE = ROOT / "docker-compose.yml"
UP_WITHIN = 90  # seconds for `up --wait`: every container started, the health-checked healthy


@dataclass
class Project:
    name: str
    env: dict[str, str]
    # docker-compose.yml, then any override files (-f ... -f ...), as a user would pass them.
    files: tuple[Path, ...] = (COMPOSE_FILE,)

    def compose(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        files = [arg for path in self.files for arg in ("-f", str(path))]
        return subprocess.run(
            ["docker", "compose", *files, "-p", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def url(self, port_variable: str, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.env[port_variable]}{path}"

    def inspect(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's container (stopped ones too)."""
        ids = self.compose("ps", "--all", "--quiet", service)
        assert ids.returncode == 0 and ids.stdout.strip(), ids.stderr
        inspect = subprocess.run(
            ["docker", "inspect", ids.stdout.split()[0]],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        info: dict[str, Any] = json.loads(inspect.stdout)[0]
        return info


P = TypeVar("P", bound=Project)


@contextmanager
def project_up(
    kind: type[P],
    name: str,
    images: dict[str, str],
    ports: Sequence[str],
    services: Sequence[str] = (),
    overrides: Sequence[Path] = (),
) -> Iterator[P]:
    """`docker compose up -d --wait [services]` as project pod-patterns-e2e-NAME-PID, each of
    `ports` (compose variables) on a free host port, with `overrides` after docker-compose.yml;
    `down -v` whatever happens."""
    env = {
        **os.environ,
        **images,  # the image names build-images.sh wrote to .env, explicitly
        **{variable: str(free_port()) for variable in ports},
    }
    project = kind(f"pod-patterns-e2e-{name}-{os.getpid()}", env, (COMPOSE_FILE, *overrides))
    try:
        up = project.compose(
            "up",
            "-d",
            "--wait",
            "--wait-timeout",
            str(UP_WITHIN),
            *services,
            timeout=UP_WITHIN + 60,
        )
        if up.returncode != 0:
            logs = project.compose("logs", "--no-color", "--tail", "50").stdout
            pytest.fail(f"docker compose up failed:\n{up.stderr}\n{logs}", pytrace=False)
        yield project
    finally:
        down = project.compose("down", "-v", "--remove-orphans", "--timeout", "10")
    # Reached only when nothing failed above, so it never hides the first error.
    assert down.returncode == 0, down.stderr
