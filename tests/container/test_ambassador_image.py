"""The ambassador image as it ships, in front of two echoserver containers on a Docker
network: the services it balances, found by their names through Docker's DNS as a pod would
find Kubernetes Services. Requests from the host show the 3:1 split by X-Echo-Server.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import images
from support.containers import assert_pid1_is, wait_healthy
from support.processes import http_get, served_by, wait_for
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# every wait below has its own, much shorter bound.
pytestmark = pytest.mark.timeout(600)

PORT = 8080
ADMIN_PORT = 9000
READY_WITHIN = 30.0
STOP_WITHIN = 5.0  # a graceful drain, well under docker stop's 10 s before SIGKILL
UPSTREAMS = "http://server1:8080 weight=3\nhttp://server2:8080"
SERVED_BY = "X-Echo-Server"


@pytest.fixture(scope="module")
def pod_images(docker_client: object) -> dict[str, str]:
    return images.build("ambassador", "echoserver")


@dataclass
class Deployment:
    ambassador: DockerContainer
    servers: dict[str, DockerContainer]

    def port(self, container_port: int) -> int:
        return int(self.ambassador.get_exposed_port(container_port))

    def get(self, path: str = "/", timeout: float = 5) -> tuple[int, str | None, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port(PORT), timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.getheader(SERVED_BY), response.read()
        finally:
            connection.close()

    def split(self, n: int) -> Counter[str]:
        """n GETs on one kept-alive connection; how many each server answered."""
        return served_by(self.port(PORT), n)

    def admin(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.port(ADMIN_PORT)}{path}", timeout=2)


def start_server(image: str, network: Network, name: str) -> DockerContainer:
    server = (
        DockerContainer(image)
        .with_env("ECHO_NAME", name)
        .with_network(network)
        .with_network_aliases(name)
        .with_kwargs(read_only=True)
    )
    server.start()
    probe = [
        "python3",
        "-c",
        "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz')",
    ]
    try:
        wait_for(lambda: server.exec(probe).exit_code == 0, READY_WITHIN, f"{name}: /healthz")
    except BaseException:
        print(server.get_logs())
        server.stop()
        raise
    return server


def start_ambassador(
    image: str, network: Network, env: dict[str, str] | None = None, **kwargs: Any
) -> DockerContainer:
    ambassador = (
        DockerContainer(image)
        .with_env("AMBASSADOR_UPSTREAMS", UPSTREAMS)
        .with_network(network)
        .with_exposed_ports(PORT, ADMIN_PORT)
        .with_kwargs(read_only=True, **kwargs)
    )
    for key, value in (env or {}).items():
        ambassador.with_env(key, value)
    ambassador.start()
    try:
        admin = int(ambassador.get_exposed_port(ADMIN_PORT))
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{admin}/readyz", 2)[0] == 200,
            READY_WITHIN,
            "ambassador: GET /readyz",
        )
    except BaseException:
        print(ambassador.get_logs())
        ambassador.stop()
        raise
    return ambassador


@pytest.fixture
def deployment(pod_images: dict[str, str]) -> Iterator[Deployment]:
    with Network() as network:
        servers: dict[str, DockerContainer] = {}
        try:
            for name in ("server1", "server2"):
                servers[name] = start_server(pod_images["ECHOSERVER_IMAGE"], network, name)
            ambassador = start_ambassador(pod_images["AMBASSADOR_IMAGE"], network)
            try:
                yield Deployment(ambassador, servers)
            finally:
                ambassador.stop()
        finally:
            for server in servers.values():
                server.stop()


def test_requests_from_the_host_split_3_to_1(deployment: Deployment) -> None:
    assert deployment.split(8) == {"server1": 6, "server2": 2}
    assert deployment.split(400) == {"server1": 300, "server2": 100}
    status, server, body = deployment.get("/hello")
    assert status == 200 and server in ("server1", "server2")
    assert body.startswith(f"server: {server}\nGET /hello HTTP/1.1\n".encode()), body


def test_upstream_names_resolved_through_docker_dns(
    deployment: Deployment, docker_client: Any
) -> None:
    status, text = deployment.admin("/upstreams")
    assert status == 200
    peers = json.loads(text)
    assert [(p["server"], p["weight"]) for p in peers] == [
        ("http://server1:8080", 3),
        ("http://server2:8080", 1),
    ]
    for peer in peers:
        name = peer["server"].removeprefix("http://").removesuffix(":8080")
        info = docker_client.containers.get(deployment.servers[name].get_container_id())
        (network,) = info.attrs["NetworkSettings"]["Networks"].values()
        assert peer["address"] == f"http://{network['IPAddress']}:8080"


def test_runs_as_uid_10001_on_a_read_only_root(deployment: Deployment, docker_client: Any) -> None:
    container = docker_client.containers.get(deployment.ambassador.get_container_id())
    assert_pid1_is(container, "ambassador")
    assert deployment.get("/")[0] == 200


def test_metrics_and_readiness_on_the_admin_port(deployment: Deployment) -> None:
    deployment.split(4)
    assert deployment.admin("/healthz")[0] == 200
    assert deployment.admin("/readyz")[0] == 200
    status, text = deployment.admin("/metrics")
    assert status == 200
    assert 'ambassador_upstream_responses_total{address="http://' in text


def test_docker_stop_drains_the_request_in_flight_and_exits_0(
    deployment: Deployment, docker_client: Any
) -> None:
    container = docker_client.containers.get(deployment.ambassador.get_container_id())
    replies: list[tuple[int, str | None, bytes]] = []
    request = threading.Thread(
        target=lambda: replies.append(deployment.get("/slow?delay=1.5", timeout=10))
    )
    request.start()
    wait_for(
        lambda: '"active_requests": 1' in deployment.admin("/upstreams")[1],
        READY_WITHIN,
        "the slow request at an upstream",
    )

    started = time.monotonic()
    container.stop(timeout=10)  # SIGTERM; SIGKILL only after 10 s
    elapsed = time.monotonic() - started
    request.join(10)

    container.reload()
    logs = container.logs().decode()
    assert container.attrs["State"]["ExitCode"] == 0, logs
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"
    assert replies and replies[0][0] == 200 and replies[0][2] == b"slept 1.5s\n", (replies, logs)


def test_image_healthcheck_turns_healthy(pod_images: dict[str, str], docker_client: Any) -> None:
    """The image's own HEALTHCHECK (podkit.healthcheck against /healthz), probed every second."""
    with Network() as network:
        servers = [
            start_server(pod_images["ECHOSERVER_IMAGE"], network, name)
            for name in ("server1", "server2")
        ]
        try:
            ambassador = start_ambassador(
                pod_images["AMBASSADOR_IMAGE"],
                network,
                healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3},
            )
            try:
                container = docker_client.containers.get(ambassador.get_container_id())
                test = container.attrs["Config"]["Healthcheck"]["Test"]
                assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "ambassador"]

                wait_healthy(container, READY_WITHIN)
            finally:
                ambassador.stop()
        finally:
            for server in servers:
                server.stop()


def test_bad_upstream_exits_2_with_one_line(pod_images: dict[str, str], docker_client: Any) -> None:
    container = docker_client.containers.run(
        pod_images["AMBASSADOR_IMAGE"],
        detach=True,
        read_only=True,
        environment={"AMBASSADOR_UPSTREAMS": "http://server1:8080 weight=three"},
    )
    try:
        result = container.wait(timeout=READY_WITHIN)
        logs = container.logs().decode()
    finally:
        container.remove(force=True)

    assert result["StatusCode"] == 2, logs
    lines = logs.strip().splitlines()
    assert len(lines) == 1, logs
    assert "AMBASSADOR_UPSTREAMS" in lines[0] and "weight" in lines[0], lines[0]
