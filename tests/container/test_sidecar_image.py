"""The sidecar image as it ships, in front of the echoserver image the way a pod runs them.

The echoserver is the main container: it owns the pod's network namespace and listens on
127.0.0.1:8080 only, so nothing outside the pod reaches it. The sidecar joins that namespace
(`network_mode=container:`), terminates TLS on :8443 with certificates from trustme mounted
read-only at /certs, and forwards to localhost:8080. The namespace's owner publishes the
sidecar's ports, 8443 and 9000 (admin), as only it can.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from support import images, metrics
from support.containers import assert_pid1_is, wait_healthy
from support.processes import http_get, wait_for
from testcontainers.core.container import DockerContainer

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# every wait below has its own, much shorter bound.
pytestmark = pytest.mark.timeout(600)

TLS_PORT = 8443
ADMIN_PORT = 9000
READY_WITHIN = 30.0
STOP_WITHIN = 5.0  # a graceful drain, well under docker stop's 10 s before SIGKILL
IN_FLIGHT_DELAY = 1.5  # seconds a request is still running when SIGTERM arrives
CERTS = "/certs"


@pytest.fixture(scope="module")
def pod_images(docker_client: object) -> dict[str, str]:
    return images.build("sidecar", "echoserver")


@dataclass
class Pki:
    ca: trustme.CA
    directory: Path  # tls.crt and tls.key, mounted at /certs

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a certificate for localhost, in a directory uid 10001 can read."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    directory = tmp_path_factory.mktemp("certs")
    leaf.private_key_pem.write_to_path(str(directory / "tls.key"))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(directory / "tls.crt"), append=index > 0)
    # A bind mount keeps the host's owners and modes; the service runs as 10001. A test key
    # may be world-readable; a real one would be owned by (or grouped to) 10001, mode 0640.
    directory.chmod(0o755)
    for name in ("tls.crt", "tls.key"):
        (directory / name).chmod(0o644)
    return Pki(ca, directory)


@dataclass
class Pod:
    web: DockerContainer  # the main container; owns the namespace, publishes the ports
    sidecar: DockerContainer
    pki: Pki

    def port(self, container_port: int) -> int:
        return int(self.web.get_exposed_port(container_port))

    def https(self, path: str, timeout: float = 5) -> tuple[int, str, str | None]:
        """GET over TLS, verified against the test CA for the name localhost; the status,
        the body and the TLS version negotiated."""
        connection = http.client.HTTPSConnection(
            "localhost", self.port(TLS_PORT), timeout=timeout, context=self.pki.client_context()
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            assert isinstance(connection.sock, ssl.SSLSocket)
            return response.status, response.read().decode(), connection.sock.version()
        finally:
            connection.close()

    def admin(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.port(ADMIN_PORT)}{path}", timeout=2)


def start_web(image: str) -> DockerContainer:
    """The echoserver on the pod's localhost only; it publishes the sidecar's ports."""
    web = (
        DockerContainer(image)
        .with_env("ECHO_LISTEN", "127.0.0.1:8080")
        .with_env("ECHO_NAME", "web")
        .with_exposed_ports(TLS_PORT, ADMIN_PORT)
        .with_kwargs(read_only=True)
    )
    web.start()
    probe = [
        "python3",
        "-c",
        "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz')",
    ]
    try:
        wait_for(lambda: web.exec(probe).exit_code == 0, READY_WITHIN, "web: GET /healthz")
    except BaseException:
        print(web.get_logs())
        web.stop()
        raise
    return web


def start_sidecar(
    image: str, web: DockerContainer, pki: Pki, env: dict[str, str] | None = None, **kwargs: Any
) -> DockerContainer:
    sidecar = (
        DockerContainer(image)
        .with_env("SIDECAR_CERT_FILE", f"{CERTS}/tls.crt")
        .with_env("SIDECAR_KEY_FILE", f"{CERTS}/tls.key")
        .with_volume_mapping(str(pki.directory), CERTS, "ro")
        .with_kwargs(network_mode=f"container:{web.get_container_id()}", read_only=True, **kwargs)
    )
    for key, value in (env or {}).items():
        sidecar.with_env(key, value)
    sidecar.start()
    admin = int(web.get_exposed_port(ADMIN_PORT))
    try:
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{admin}/readyz", 2)[0] == 200,
            READY_WITHIN,
            "sidecar: GET /readyz",
        )
    except BaseException:
        print(sidecar.get_logs())
        sidecar.stop()
        raise
    return sidecar


@pytest.fixture
def pod(pod_images: dict[str, str], pki: Pki) -> Iterator[Pod]:
    web = start_web(pod_images["ECHOSERVER_IMAGE"])
    try:
        sidecar = start_sidecar(pod_images["SIDECAR_IMAGE"], web, pki)
        try:
            yield Pod(web, sidecar, pki)
        finally:
            sidecar.stop()
    finally:
        web.stop()


def test_https_reaches_the_main_container_with_forwarded_headers(pod: Pod) -> None:
    status, text, version = pod.https("/hello?x=1")

    assert status == 200, text
    assert version == "TLSv1.3"
    lines = text.splitlines()
    assert lines[:2] == ["server: web", "GET /hello?x=1 HTTP/1.1"]
    # The sidecar reaches the main container over the pod's shared localhost.
    assert lines[2].startswith("client: 127.0.0.1:"), lines[2]
    headers = dict(line.split(": ", 1) for line in lines[3:] if ": " in line)
    assert headers["X-Forwarded-Proto"] == "https"
    ipaddress.ip_address(headers["X-Forwarded-For"])  # the client as the sidecar saw it


def test_main_container_is_not_reachable_from_outside_the_pod(pod: Pod, docker_client: Any) -> None:
    """8080 is bound to the namespace's loopback: the pod's address refuses it."""
    info = docker_client.containers.get(pod.web.get_container_id())
    address = info.attrs["NetworkSettings"]["IPAddress"]
    assert address, info.attrs["NetworkSettings"]
    with pytest.raises(OSError):
        socket.create_connection((address, 8080), timeout=2).close()
    # ... while the sidecar's port on the same address answers (TLS, so a handshake).
    context = pod.pki.client_context()
    context.check_hostname = False
    with (
        socket.create_connection((address, TLS_PORT), timeout=2) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_readiness_and_metrics_on_the_admin_port(pod: Pod) -> None:
    assert pod.admin("/healthz")[0] == 200
    assert pod.admin("/readyz")[0] == 200
    pod.https("/")
    status, text = pod.admin("/metrics")
    assert status == 200 and "# TYPE" in text


def test_runs_as_uid_10001_on_a_read_only_root(pod: Pod, docker_client: Any) -> None:
    container = docker_client.containers.get(pod.sidecar.get_container_id())
    assert_pid1_is(container, "sidecar")
    probe = container.exec_run(["touch", f"{CERTS}/probe"], user="0")
    assert probe.exit_code != 0 and b"Read-only file system" in probe.output

    # ... and it serves all the same.
    assert pod.https("/")[0] == 200


def test_sigterm_drains_the_request_in_flight_and_exits_0(pod: Pod, docker_client: Any) -> None:
    container = docker_client.containers.get(pod.sidecar.get_container_id())
    replies: list[tuple[int, str, str | None]] = []
    request = threading.Thread(
        target=lambda: replies.append(pod.https(f"/slow?delay={IN_FLIGHT_DELAY}", timeout=10))
    )
    request.start()
    wait_for(  # counted once its handshake is done; the request follows at once
        lambda: metrics.value(metrics.parse(pod.admin("/metrics")[1]), "sidecar_connections") == 1,
        10,
        "the slow request's connection",
    )
    time.sleep(0.3)  # the request is at the main container, which is sleeping

    started = time.monotonic()
    container.stop(timeout=10)  # SIGTERM; SIGKILL only after 10 s
    elapsed = time.monotonic() - started
    request.join(10)

    container.reload()
    logs = container.logs().decode()
    assert container.attrs["State"]["ExitCode"] == 0, logs
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"
    assert replies and replies[0][:2] == (200, f"slept {IN_FLIGHT_DELAY:g}s\n"), (replies, logs)


def test_sigterm_after_a_bare_tcp_probe_exits_0_quickly(pod: Pod, docker_client: Any) -> None:
    """A connection closed before any TLS byte (a load balancer's TCP check, a port scan)
    must not hold up the drain."""
    socket.create_connection(("127.0.0.1", pod.port(TLS_PORT)), timeout=2).close()
    assert pod.https("/")[0] == 200
    container = docker_client.containers.get(pod.sidecar.get_container_id())

    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started

    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode()
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"


def test_image_healthcheck_turns_healthy(
    pod_images: dict[str, str], pki: Pki, docker_client: Any
) -> None:
    """The image's own HEALTHCHECK (podkit.healthcheck against /healthz), probed every second."""
    web = start_web(pod_images["ECHOSERVER_IMAGE"])
    try:
        # No "test" key: the daemon keeps the image's command and takes only the timing.
        sidecar = start_sidecar(
            pod_images["SIDECAR_IMAGE"],
            web,
            pki,
            healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3},
        )
        try:
            container = docker_client.containers.get(sidecar.get_container_id())
            test = container.attrs["Config"]["Healthcheck"]["Test"]
            assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "sidecar"]

            wait_healthy(container, READY_WITHIN)
        finally:
            sidecar.stop()
    finally:
        web.stop()


def test_missing_certificate_exits_2_with_one_line(
    pod_images: dict[str, str], pki: Pki, docker_client: Any
) -> None:
    container = docker_client.containers.run(
        pod_images["SIDECAR_IMAGE"],
        detach=True,
        read_only=True,
        environment={
            "SIDECAR_CERT_FILE": f"{CERTS}/missing.crt",
            "SIDECAR_KEY_FILE": f"{CERTS}/tls.key",
        },
        volumes={str(pki.directory): {"bind": CERTS, "mode": "ro"}},
    )
    try:
        result = container.wait(timeout=READY_WITHIN)
        logs = container.logs().decode()
    finally:
        container.remove(force=True)

    assert result["StatusCode"] == 2, logs
    lines = logs.strip().splitlines()
    assert len(lines) == 1, logs
    assert "SIDECAR_CERT_FILE" in lines[0] and f"{CERTS}/missing.crt" in lines[0], lines[0]
    assert "no such file" in lines[0], lines[0]
