"""The two ambassadors k8s/ adds to the base, run with podman kube play (support/podman.py):

- k8s/ambassador-inpod, Burns' drawing: requests made inside the client's main container to
  its localhost split 90/10 over backend-v1 and backend-v2, and a request asking for the new
  version (header or cookie) always reaches v2;
- k8s/ambassador-tcp: `redis-cli` through redis-ambassador reads from both replicas, and a
  replica stopped mid-run costs at most the command in flight;
- every probe answers as the kubelet asks it.
"""

from __future__ import annotations

import copy
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from support import images
from support.kustomize import Doc, pod_containers, render
from support.podman import PlayedPod, load_images, play, podman, probe, wait_ready
from support.tools import require_binary

pytestmark = pytest.mark.timeout(600)

WORKLOADS = ("client", "backend-v1", "backend-v2", "redis-a", "redis-b", "redis-ambassador")
SERVICES = ("ambassador", "echoserver")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
CALLS = """
import sys, urllib.request
n, headers = int(sys.argv[1]), dict(h.split(": ", 1) for h in sys.argv[2:])
for _ in range(n):
    request = urllib.request.Request("http://localhost:8080/", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(answer.headers["X-Echo-Server"])
"""


def quiet_client(docs: list[Doc]) -> list[Doc]:
    """The played copy's client calls once an hour: the test's requests are then a run of
    the balancer's picks (its own calls would take some)."""
    out = copy.deepcopy(docs)
    for doc in out:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "client":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for env in container.get("env", []):
                    if env["name"] == "CLIENT_INTERVAL":
                        env["value"] = "3600"
    return out


@pytest.fixture(scope="module")
def pods(docker_client: object) -> Iterator[dict[str, PlayedPod]]:
    env = images.build(*SERVICES, "redis")
    load_images([env[f"{name.upper()}_IMAGE"] for name in (*SERVICES, "redis")])
    docs = [
        d
        for d in render("k8s")
        if d["kind"] in ("ConfigMap", "Service")
        or (d["kind"] == "Deployment" and d["metadata"]["name"] in WORKLOADS)
    ]
    with play(quiet_client(docs), images={"redis:7": env["REDIS_IMAGE"]}) as played:
        wait_ready(played)
        yield played


def calls(client: PlayedPod, n: int, *headers: str) -> Counter[str]:
    done = client.exec("client", "python3", "-c", CALLS, str(n), *headers)
    assert done.returncode == 0, done.stderr
    return Counter(done.stdout.split())


def test_every_probe_answers_as_the_kubelet_asks(pods: dict[str, PlayedPod]) -> None:
    asked = []
    for pod in pods.values():
        for container in pod_containers(pod.spec):
            for kind in PROBES:
                if kind in container:
                    asked.append(f"{pod.name}/{container['name']}/{kind}")
                    assert probe(pod, container, kind), asked[-1]
    for expected in (
        "client/client/readinessProbe",  # ready while its ambassador is
        "client/ambassador/startupProbe",
        "redis-b/redis/livenessProbe",
        "redis-ambassador/ambassador/readinessProbe",
    ):
        assert expected in asked, asked


def test_the_clients_requests_split_90_to_10(pods: dict[str, PlayedPod]) -> None:
    assert calls(pods["client"], 100) == {"v1": 90, "v2": 10}


@pytest.mark.parametrize("header", ["X-Experiment: v2", "Cookie: experiment=v2"])
def test_asking_for_the_new_version_always_reaches_it(
    pods: dict[str, PlayedPod], header: str
) -> None:
    assert calls(pods["client"], 30, header) == {"v2": 30}


def cli(pod: PlayedPod, *command: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(pod.host_ports["redis"]), *command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def test_redis_cli_through_the_tcp_ambassador_survives_a_stopped_replica(
    pods: dict[str, PlayedPod],
) -> None:
    require_binary("redis-cli")
    primary, replica, ambassador = pods["redis-a"], pods["redis-b"], pods["redis-ambassador"]
    assert primary.exec("redis", "redis-cli", "SET", "key", "replicated").stdout.strip() == "OK"
    deadline = time.monotonic() + 60  # the replica's first full sync
    while replica.exec("redis", "redis-cli", "GET", "key").stdout.strip() != "replicated":
        assert time.monotonic() < deadline, "the key never reached the replica"
        time.sleep(0.5)
    roles = set()
    for _ in range(4):  # one connection each, 1:1: consecutive commands alternate
        info = cli(ambassador, "INFO", "replication")
        roles.add(next(x for x in info.splitlines() if x.startswith("role:")))
    assert roles == {"role:master", "role:slave"}
    outcomes: list[tuple[float, bool]] = []
    stopped_at = [0.0]

    def stop() -> None:
        while len(outcomes) < 30:
            time.sleep(0.01)
        podman("stop", "--time", "0", replica.container("redis"))
        stopped_at[0] = time.monotonic()

    stopper = threading.Thread(target=stop)
    stopper.start()
    for _ in range(100):
        outcomes.append((time.monotonic(), cli(ambassador, "GET", "key") == "replicated"))
    stopper.join(60)
    assert stopped_at[0]
    failed = [t for t, ok in outcomes if not ok]
    assert len(failed) <= 1, failed
    assert not [t for t in failed if t > stopped_at[0] + 1.0]
