"""The pods of `kubectl kustomize k8s/base` (the three patterns), run with podman kube play
(support/podman.py says what it changes to stand in for a cluster): each pattern answers
through its pod, every probe answers as the kubelet would ask it, and the containers run as
locked down as declared. test_play_overlays.py plays two overlays, test_play_sidecars.py the
gitsync and logagent pods of k8s/."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator

import pytest
import redis
from cryptography import x509
from support import images
from support.kustomize import pod_containers, render
from support.metrics import parse, value
from support.podman import PlayedPod, load_images, play, probe, split, wait_ready
from support.processes import http_get

pytestmark = pytest.mark.timeout(600)

SERVICES = ("adapter", "sidecar", "ambassador", "echoserver")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


@pytest.fixture(scope="module")
def pods(docker_client: object) -> Iterator[dict[str, PlayedPod]]:
    env = images.build(*SERVICES, "redis")
    local = [env[f"{name.upper()}_IMAGE"] for name in (*SERVICES, "redis")]
    load_images(local)
    # The manifests name the official Redis; the build may have made a local stand-in.
    with play(render("k8s/base"), images={"redis:7": env["REDIS_IMAGE"]}) as played:
        wait_ready(played)
        yield played


def test_every_probe_answers_as_the_kubelet_asks(pods: dict[str, PlayedPod]) -> None:
    asked = []
    for pod in pods.values():
        for container in pod_containers(pod.spec):
            for kind in PROBES:
                if kind in container:
                    asked.append(f"{pod.name}/{container['name']}/{kind}")
                    assert probe(pod, container, kind), asked[-1]
    # The exec probes (redis-cli, the main web container's python) ran too.
    assert "redis/redis/livenessProbe" in asked and "web/web/livenessProbe" in asked
    assert len(asked) >= 15


def test_containers_run_locked_down(pods: dict[str, PlayedPod]) -> None:
    for pod in pods.values():
        for container in pod_containers(pod.spec):
            name = f"{pod.name}/{container['name']}"
            status = pod.exec(container["name"], "cat", "/proc/1/status")
            assert status.returncode == 0, (name, status.stderr)
            fields = dict(line.split(":\t", 1) for line in status.stdout.splitlines())
            assert fields["Uid"].split()[0] != "0", name
            assert fields["CapEff"].strip() == "0000000000000000", name
            assert fields["NoNewPrivs"].strip() == "1", name
            assert fields["Seccomp"].strip() == "2", name  # a filter: RuntimeDefault
            touch = pod.exec(container["name"], "touch", "/written")
            assert touch.returncode != 0 and "Read-only file system" in touch.stderr, name


def test_sidecar_terminates_tls_for_the_main_container(pods: dict[str, PlayedPod]) -> None:
    web = pods["web"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(
        "127.0.0.1", web.host_ports["https"], context=context, timeout=10
    )
    conn.request("GET", "/hello")
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 200
    # The main container answered (its pod name comes from the downward API), behind TLS.
    assert response.getheader("X-Echo-Server") == web.pod
    assert "GET /hello" in body and "X-Forwarded-Proto: https" in body
    # The certificate is the one the init container wrote into the shared emptyDir.
    der = conn.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    conn.close()
    names = (
        x509.load_der_x509_certificate(der)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert {"localhost", "web"} <= set(names)
    # The main container listens on the pod's localhost only: from the network, it is the
    # sidecar's port or nothing.
    with pytest.raises(OSError):
        http.client.HTTPConnection(web.ip, 8080, timeout=5).connect()


def test_ambassador_splits_three_to_one(pods: dict[str, PlayedPod]) -> None:
    # server1 and server2 are found by their Service names (ConfigMap unchanged).
    assert split(pods["ambassador"], 400) == {"server1": 300, "server2": 100}


def test_adapter_exports_redis_from_its_pod(pods: dict[str, PlayedPod]) -> None:
    redis_pod = pods["redis"]
    client = redis.Redis(port=redis_pod.host_ports["redis"], socket_timeout=5)
    client.set("played", "yes")
    client.close()
    status, text = http_get(redis_pod.url("metrics", "/metrics"))
    assert status == 200
    families = parse(text)
    assert value(families, "redis_up") == 1
    assert value(families, "redis_db_keys", db="db0") >= 1
    # Where the Service sends Prometheus: the pod's address, port 9121.
    status, _ = http_get(f"http://{redis_pod.ip}:9121/metrics")
    assert status == 200
