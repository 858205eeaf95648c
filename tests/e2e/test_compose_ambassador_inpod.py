"""The in-pod ambassador of docker-compose.yml, up for real, as Burns' book draws it: the
client's main container (`client`) only knows http://localhost:8080/, and the ambassador
beside it (`client-ambassador`, in the client's network namespace) splits that traffic over
backend-v1 and backend-v2, 9:1, and sends every request that asks for the new version (a
header, or a cookie) to v2. The requests are made inside the client container, from its
localhost, with the image's own Python.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
from support import images
from support.compose import Project, project_up
from support.processes import http_get

pytestmark = pytest.mark.timeout(600)

SERVICES = ("client", "client-ambassador", "backend-v1", "backend-v2")
# n GETs to the pod's localhost, each on a new connection, with the given headers; prints who
# answered each (the echoserver's X-Echo-Server), one per line.
CALLS = """
import sys, urllib.request
n, headers = int(sys.argv[1]), dict(h.split(": ", 1) for h in sys.argv[2:])
for _ in range(n):
    request = urllib.request.Request("http://localhost:8080/", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(answer.headers["X-Echo-Server"])
"""


class ClientPod(Project):
    def calls(self, n: int, *headers: str) -> Counter[str]:
        """n requests made by the client container itself, to localhost:8080."""
        done = self.compose("exec", "-T", "client", "python3", "-c", CALLS, str(n), *headers)
        assert done.returncode == 0, done.stderr
        return Counter(done.stdout.split())

    def admin(self, path: str) -> tuple[int, str]:
        port = self.env["CLIENT_AMBASSADOR_ADMIN_HOST_PORT"]
        return http_get(f"http://127.0.0.1:{port}{path}", 5)


@pytest.fixture(scope="module")
def pod(demo_images: dict[str, str]) -> Iterator[ClientPod]:
    env = images.build("ambassador", "echoserver")
    # The demo client calls once an hour here: the test's requests are the only ones, so a
    # run of them is a run of the balancer's picks.
    env["EXPERIMENT_CLIENT_INTERVAL"] = "3600"
    with project_up(
        ClientPod, "inpod", env, ["CLIENT_AMBASSADOR_ADMIN_HOST_PORT"], SERVICES
    ) as pod:
        yield pod


def test_the_clients_requests_split_90_to_10(pod: ClientPod) -> None:
    # nginx's smooth weighted round robin: any 100 picks in a row are exactly 90 and 10.
    assert pod.calls(100) == {"v1": 90, "v2": 10}


@pytest.mark.parametrize("header", ["X-Experiment: v2", "Cookie: theme=dark; experiment=v2"])
def test_asking_for_the_new_version_always_reaches_it(pod: ClientPod, header: str) -> None:
    assert pod.calls(30, header) == {"v2": 30}
    # Anything else is the experiment as usual.
    assert pod.calls(20, "X-Experiment: v1", "Cookie: experiment=v1") == {"v1": 18, "v2": 2}


def test_the_pod_is_wired_as_one(pod: ClientPod) -> None:
    client, ambassador = pod.inspect("client"), pod.inspect("client-ambassador")
    # The ambassador lives in the client's network namespace: the same localhost.
    assert ambassador["HostConfig"]["NetworkMode"] == f"container:{client['Id']}"
    assert ambassador["State"]["Health"]["Status"] == "healthy"
    for container in (client, ambassador):
        assert container["HostConfig"]["ReadonlyRootfs"] is True
    # Only the ambassador's admin port leaves the pod; the backends publish nothing.
    published = {port for port, b in client["NetworkSettings"]["Ports"].items() if b}
    assert published == {"9000/tcp"}
    for backend in ("backend-v1", "backend-v2"):
        assert not any(pod.inspect(backend)["NetworkSettings"]["Ports"].values())
    # What the client knows of its backend: localhost, nothing else.
    env = dict(e.split("=", 1) for e in client["Config"]["Env"])
    assert env["BACKEND_URL"] == "http://localhost:8080/"
    status, text = pod.admin("/upstreams")
    assert status == 200
    peers = json.loads(text)
    assert sorted((p["group"], p["server"], p["weight"], p["healthy"]) for p in peers) == [
        ("default", "http://backend-v1:8080", 9, True),
        ("default", "http://backend-v2:8080", 1, True),
        ("v2", "http://backend-v2:8080", 1, True),
    ]
