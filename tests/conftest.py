"""Fixtures shared by every tier.

Tiers live in folders (unit/, integration/, container/, e2e/, k8s/) and each folder's tests
carry the marker of the same name, added here, so `pytest -m unit` is the fast subset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.tools import require

ROOT = Path(__file__).resolve().parent.parent
TIERS = ("unit", "integration", "container", "e2e", "k8s")


def pytest_sessionstart(session: pytest.Session) -> None:
    """`make test` runs the proxies' tests twice, against the pure and the compiled build
    (setup.py); POD_PATTERNS_EXPECT_BUILD makes sure each run imports the build it names."""
    expected = os.environ.get("POD_PATTERNS_EXPECT_BUILD")
    if expected:
        from podkit.proxy import compiled

        actual = "compiled" if compiled() else "pure"
        if actual != expected:
            raise pytest.UsageError(f"expected the {expected} build of podkit.proxy, got {actual}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A client for the Docker engine; the container and e2e tiers need it."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        require("Docker engine", False, f"{type(exc).__name__}: {exc}")
        raise
    yield client
    client.close()
