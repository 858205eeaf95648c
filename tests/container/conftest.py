"""Container tier: the built images run with testcontainers-python, joined the way a pod is."""

from __future__ import annotations

import os

# Ryuk, testcontainers' reaper, is an image from a registry that may be out of reach; the
# fixtures here remove what they start instead. Set before testcontainers reads its config.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"

import pytest
from support import images
from testcontainers.core.config import testcontainers_config

testcontainers_config.ryuk_disabled = True


@pytest.fixture(scope="session")
def pod_images(docker_client: object) -> dict[str, str]:
    """The adapter and Redis images, built once per session; names as in .env."""
    return images.build("adapter", "redis")
