"""Fixtures shared by every tier.

Tiers live in folders (unit/, integration/, container/, e2e/) and each folder's tests carry
the marker of the same name, added here, so `pytest -m unit` is the fast subset.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("unit", "integration", "container", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


def require(what: str, ok: bool, why: str) -> None:
    """Skip when a tool is missing on a developer's machine; fail under CI.

    CI installs everything (.ci/run), so there a missing tool is a broken setup, never a
    reason to pass quietly.
    """
    if ok:
        return
    message = f"{what} is not available: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: missing tools fail the run)", pytrace=False)
    pytest.skip(message)


def require_binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    require(name, path is not None, "install it with scripts/bootstrap-host.sh")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A client for the Docker engine; the container and e2e tiers need it."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no usable daemon
        require("Docker engine", False, f"{type(exc).__name__}: {exc}")
        raise
    yield client
    client.close()
