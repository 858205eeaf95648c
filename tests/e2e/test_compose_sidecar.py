"""The sidecar pod of docker-compose.yml, up for real: `web` (the main container, on the pod's
localhost only), `certs` (a one-shot filling the shared volume with a self-signed certificate)
and `sidecar` (TLS on :8443 in front of web). HTTPS from the host reaches web through the
sidecar; web's own port does not reach the host at all.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509
from support import images
from support.compose import Project, project_up
from support.processes import http_get

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# compose has its own, much shorter bounds.
pytestmark = pytest.mark.timeout(600)

SERVICES = ("web", "certs", "sidecar")


class SidecarPod(Project):
    def https(self, path: str) -> tuple[int, str, bytes]:
        """GET over TLS without verification (the certificate is self-signed); the status,
        the body and the certificate served, DER-encoded."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        port = int(self.env["SIDECAR_HOST_PORT"])
        connection = http.client.HTTPSConnection("localhost", port, timeout=5, context=context)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            assert isinstance(connection.sock, ssl.SSLSocket)
            der = connection.sock.getpeercert(binary_form=True)
            assert der is not None
            return response.status, response.read().decode(), der
        finally:
            connection.close()


@pytest.fixture(scope="module")
def sidecar_images(demo_images: dict[str, str]) -> dict[str, str]:
    """demo_images checks for Compose v2 (and builds the adapter pod's images)."""
    return images.build("sidecar", "echoserver")


@pytest.fixture(scope="module")
def pod(sidecar_images: dict[str, str]) -> Iterator[SidecarPod]:
    """`docker compose up -d --wait web certs sidecar`, its own project, free host ports."""
    with project_up(
        SidecarPod,
        "sidecar",
        sidecar_images,
        ["SIDECAR_HOST_PORT", "SIDECAR_HTTP_HOST_PORT", "SIDECAR_ADMIN_HOST_PORT"],
        SERVICES,
    ) as pod:
        yield pod


def test_https_through_the_sidecar_reaches_web(pod: SidecarPod) -> None:
    status, text, der = pod.https("/from-the-host")

    assert status == 200, text
    lines = text.splitlines()
    assert lines[:2] == ["server: web", "GET /from-the-host HTTP/1.1"]
    assert lines[2].startswith("client: 127.0.0.1:"), lines[2]  # the pod's shared localhost
    assert "X-Forwarded-Proto: https" in lines[3:]

    # The certificate the certs one-shot made, for the names the compose file gives it.
    cert = x509.load_der_x509_certificate(der)
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in alt.get_values_for_type(x509.DNSName)
    assert cert.issuer == cert.subject  # self-signed


def test_pod_wiring(pod: SidecarPod) -> None:
    web, certs, sidecar = (pod.inspect(service) for service in SERVICES)
    assert certs["State"]["Status"] == "exited" and certs["State"]["ExitCode"] == 0
    assert sidecar["HostConfig"]["NetworkMode"] == f"container:{web['Id']}"
    for container in (web, sidecar):
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["State"]["Health"]["Status"] == "healthy"
    assert http_get(f"http://127.0.0.1:{pod.env['SIDECAR_ADMIN_HOST_PORT']}/readyz", 5)[0] == 200


def test_web_port_8080_is_not_reachable_from_the_host(pod: SidecarPod) -> None:
    web = pod.inspect("web")
    # Published: the sidecar's ports only (TLS, the plain-HTTP redirect, admin).
    published = {port for port, bindings in web["NetworkSettings"]["Ports"].items() if bindings}
    assert published == {"8443/tcp", "8000/tcp", "9000/tcp"}
    # And not even on the pod's own address: web listens on the pod's loopback.
    (network,) = web["NetworkSettings"]["Networks"].values()
    address = network["IPAddress"]
    with pytest.raises(OSError):
        socket.create_connection((address, 8080), timeout=2).close()
    socket.create_connection((address, 8443), timeout=2).close()  # the sidecar's port is there
