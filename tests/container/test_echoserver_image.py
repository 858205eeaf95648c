"""The echoserver image as it ships: non-root, read-only root FS, healthy, answering.

It is the main container of the sidecar pod (listening on 127.0.0.1:8080 behind the TLS
proxy) and the ambassador pod's server1/server2; here it runs alone, its port published.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import images
from support.containers import assert_pid1_is, wait_healthy
from support.processes import http_get, wait_for
from testcontainers.core.container import DockerContainer

# The first test also builds the image (minutes on a fresh machine, seconds when cached).
pytestmark = pytest.mark.timeout(600)

PORT = 8080
READY_WITHIN = 30.0
STOP_WITHIN = 5.0  # a graceful drain, well under docker stop's 10 s before SIGKILL


@pytest.fixture(scope="module")
def echo_image(docker_client: object) -> str:
    return images.build("echoserver")["ECHOSERVER_IMAGE"]


def start(
    image: str, port: int = PORT, env: dict[str, str] | None = None, **kwargs: Any
) -> tuple[DockerContainer, str]:
    """The image on a read-only root FS, `port` published; returns it and its base URL."""
    container = (
        DockerContainer(image).with_exposed_ports(port).with_kwargs(read_only=True, **kwargs)
    )
    for key, value in (env or {}).items():
        container.with_env(key, value)
    container.start()
    try:
        base = f"http://127.0.0.1:{container.get_exposed_port(port)}"
        wait_for(lambda: http_get(base + "/healthz", 2)[0] == 200, READY_WITHIN, "GET /healthz")
    except BaseException:
        print(container.get_logs())
        container.stop()
        raise
    return container, base


@pytest.fixture
def server1(echo_image: str) -> Iterator[tuple[DockerContainer, str]]:
    container, base = start(echo_image, env={"ECHO_NAME": "server1"})
    try:
        yield container, base
    finally:
        container.stop()


def test_answers_with_the_request_it_received(server1: tuple[DockerContainer, str]) -> None:
    _, base = server1
    status, text = http_get(base + "/path?q=1", headers={"X-Forwarded-Proto": "https"})
    lines = text.splitlines()
    assert status == 200
    assert lines[:2] == ["server: server1", "GET /path?q=1 HTTP/1.1"]
    assert lines[2].startswith("client: ")  # the Docker bridge's gateway, as seen inside
    assert "X-Forwarded-Proto: https" in lines[3:]

    status, text = http_get(base + "/", headers={"Accept": "application/json"})
    assert status == 200 and json.loads(text)["server"] == "server1"
    assert http_get(base + "/status/503")[0] == 503


def test_runs_as_uid_10001_on_a_read_only_root(
    server1: tuple[DockerContainer, str], docker_client: Any
) -> None:
    container = docker_client.containers.get(server1[0].get_container_id())
    assert_pid1_is(container, "echoserver")
    # ... and it serves all the same, large bodies included.
    status_code, body = http_get(server1[1] + "/bytes/1000000")
    assert status_code == 200 and len(body) == 1_000_000


def test_sigterm_drains_and_exits_0(
    server1: tuple[DockerContainer, str], docker_client: Any
) -> None:
    container = docker_client.containers.get(server1[0].get_container_id())
    started = time.monotonic()
    container.stop(timeout=10)  # SIGTERM; SIGKILL only after 10 s
    elapsed = time.monotonic() - started
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode()
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"


def test_healthcheck_follows_echo_listen_and_name_defaults_to_hostname(
    echo_image: str, docker_client: Any
) -> None:
    """The image's HEALTHCHECK finds the port in ECHO_LISTEN; without ECHO_NAME the server
    reports its host name, which is the container's (the pod's, in Kubernetes)."""
    # No "test" key: the daemon keeps the image's command and takes only the timing.
    container, base = start(
        echo_image,
        9000,
        env={"ECHO_LISTEN": "0.0.0.0:9000"},
        healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3},
    )
    try:
        info = docker_client.containers.get(container.get_container_id())
        test = info.attrs["Config"]["Healthcheck"]["Test"]
        assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "echoserver"]
        hostname = info.attrs["Config"]["Hostname"]
        assert http_get(base + "/")[1].startswith(f"server: {hostname}\n")

        wait_healthy(info, READY_WITHIN)
    finally:
        container.stop()
