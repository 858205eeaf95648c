"""Every service image as scripts/build-images.sh builds it from the one Dockerfile: tagged
with the project's version, the full set of OCI labels, and the shared HEALTHCHECK module
present and answering with one line (the proxies' images carry podkit in their compiled
package, the others in /app)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from support import images

import podkit

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("adapter", "sidecar", "ambassador", "echoserver", "gitsync", "logagent")
VERSION = podkit.__version__  # pyproject.toml's version is read from there too
OCI = "org.opencontainers.image."


@pytest.fixture(scope="module")
def built(docker_client: object) -> dict[str, str]:
    return images.build(*SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_tag_and_oci_labels(built: dict[str, str], docker_client: Any, service: str) -> None:
    name = built[f"{service.upper()}_IMAGE"]
    assert name == f"pod-patterns/{service}:{VERSION}"
    config = docker_client.images.get(name).attrs["Config"]
    labels = {k.removeprefix(OCI): v for k, v in config["Labels"].items() if k.startswith(OCI)}
    assert set(labels) == {
        "title",
        "description",
        "licenses",
        "version",
        "revision",
        "created",
        "source",
    }
    assert labels["title"] == f"pod-patterns {service}"
    assert labels["description"]
    assert labels["licenses"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()
    assert labels["version"] == VERSION
    created = datetime.datetime.strptime(labels["created"], "%Y-%m-%dT%H:%M:%SZ")
    assert created.year >= 2024
    # The revision label and the one *_build_info reports are the same value.
    env = dict(item.split("=", 1) for item in config["Env"])
    assert labels["revision"] == env["POD_PATTERNS_REVISION"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python3", "-m", "podkit.healthcheck", service]


@pytest.mark.parametrize("service", SERVICES)
def test_the_healthcheck_says_why_in_one_line(
    built: dict[str, str], docker_client: Any, service: str
) -> None:
    """Nothing listening: exit 1 and one line naming the address asked."""
    name = built[f"{service.upper()}_IMAGE"]
    container = docker_client.containers.run(
        name,
        entrypoint=["python3", "-m", "podkit.healthcheck", service, "--timeout", "1"],
        network_mode="none",
        detach=True,
    )
    try:
        result = container.wait(timeout=30)
        out = container.logs().decode()
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 1, out
    assert out.count("\n") == 1 and out.startswith("unhealthy: http://127.0.0.1:"), out
