"""The rendered k8s/ pods run with `podman kube play`: what a kubelet would run, without a
cluster (no API server can be had on these machines).

Debian 12's podman 4.3 differs from a kubelet in these ways that matter here; `for_podman`
changes the played copy for them and nothing else:
- images come from podman's own store, copied from Docker's: `imagePullPolicy: Never`, and
  the images the build named in .env (the offline Redis stand-in, for example);
- 4.3 publishes every containerPort on the same port of the host (later versions do not), so
  two pods with :8080 collide: each port gets a free hostPort on 127.0.0.1 instead;
- each replica of a Deployment would be a pod with the same host ports: one is played;
- it restarts finished init containers under `restartPolicy: Always`, so the pods' policy is
  OnFailure (a crashed container is still restarted);
- there are no Services and no cluster DNS: every pod gets a fixed address on a private
  network, and `hostAliases` give each Service's names the address of the pod it selects;
- it writes a Secret volume's files base64-encoded (and panics on one without `optional`):
  the played copy mounts the same keys, decoded, from a ConfigMap of the same name;
- its downward API lacks `metadata.namespace`: the played copy sets the value a kubelet
  would, the workload's namespace.
Probes are left as they are: podman makes only liveness probes into healthchecks, run by
systemd timers through curl, so `probe` does the kubelet's asking itself.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from support.kustomize import Doc, pod_containers, service_selects
from support.processes import served_by, wait_for
from support.tools import require_binary

TIMEOUT = 180.0
NETWORK_PREFIX = "pod-patterns-k8s-"
# Pods get fixed addresses from here, on a network of their own.
FIRST_HOST = 10


def podman(*args: str, timeout: float = TIMEOUT, check: bool = True) -> str:
    proc = subprocess.run(
        [require_binary("podman"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def load_images(images: Iterable[str]) -> None:
    """Copy images from Docker's store into podman's, unless podman has them already."""
    for image in images:
        docker_id = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        podman_id = podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
        if docker_id.removeprefix("sha256:") == podman_id.strip():
            continue
        with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
            load = subprocess.run(
                [require_binary("podman"), "load", "--quiet"],
                stdin=save.stdout,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save {image} | podman load failed: {load.stderr!r}")


@dataclass
class PlayedPod:
    """One played workload: its pod spec as played, its address and its published ports."""

    name: str
    pod: str
    ip: str
    spec: Doc
    host_ports: dict[str, int] = field(default_factory=dict)

    def container(self, name: str) -> str:
        return f"{self.pod}-{name}"

    def url(self, port_name: str, path: str = "/", scheme: str = "http") -> str:
        """The address a client outside uses (the LoadBalancer's stand-in)."""
        return f"{scheme}://127.0.0.1:{self.host_ports[port_name]}{path}"

    def logs(self, container: str) -> str:
        out = subprocess.run(
            [require_binary("podman"), "logs", self.container(container)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return out.stdout + out.stderr

    def restarts(self, container: str) -> int:
        return int(podman("inspect", "--format", "{{.RestartCount}}", self.container(container)))

    def mount_source(self, container: str, destination: str) -> Path:
        """Where on the host a container's mount lives (play's copy of a ConfigMap, say)."""
        mounts = json.loads(
            podman("inspect", "--format", "{{json .Mounts}}", self.container(container))
        )
        return Path(next(m["Source"] for m in mounts if m["Destination"] == destination))

    def exec(self, container: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require_binary("podman"), "exec", self.container(container), *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def split(pod: PlayedPod, requests: int) -> Counter[str]:
    """Which server answered each of `requests` GETs through the pod's `http` port."""
    return served_by(pod.host_ports["http"], requests)


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "Pod")]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def pod_name(doc: Doc) -> str:
    """podman's name for the (first) pod of a workload."""
    name: str = doc["metadata"]["name"]
    return f"{name}-pod-0" if doc["kind"] == "Deployment" else name


def pod_labels(doc: Doc) -> dict[str, str]:
    meta = doc["metadata"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]
    return dict(meta.get("labels", {}))


def service_names(service: Doc) -> list[str]:
    """The names cluster DNS gives a Service."""
    name = service["metadata"]["name"]
    namespace = service["metadata"].get("namespace")
    if not namespace:
        return [name]
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
    ]


def for_podman(
    docs: list[Doc], addresses: dict[str, str], images: dict[str, str]
) -> tuple[list[Doc], list[Doc], dict[str, dict[str, int]]]:
    """The ConfigMaps and Secrets, and the workloads, changed as the module docstring says;
    and each workload's published ports."""
    aliases: dict[str, list[str]] = {}
    for service in (d for d in docs if d["kind"] == "Service"):
        targets = [
            w["metadata"]["name"]
            for w in workloads(docs)
            if service_selects(service["spec"].get("selector", {}), pod_labels(w))
        ]
        if len(targets) == 1:
            aliases.setdefault(addresses[targets[0]], []).extend(service_names(service))
    played, ports = [], {}
    for doc in workloads(docs):
        doc = copy.deepcopy(doc)
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = 1
        spec = pod_spec(doc)
        spec["restartPolicy"] = "OnFailure"
        spec["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in aliases.items()]
        published = ports.setdefault(doc["metadata"]["name"], {})
        for container in spec.get("initContainers", []) + spec["containers"]:
            container["image"] = images.get(container["image"], container["image"])
            for env in container.get("env", []):
                field = env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                if field == "metadata.namespace":
                    env.pop("valueFrom")
                    env["value"] = doc["metadata"].get("namespace", "default")
            container["imagePullPolicy"] = "Never"
            for port in container.get("ports", []):
                port["hostIP"], port["hostPort"] = "127.0.0.1", host_port()
                published[port.get("name", str(port["containerPort"]))] = port["hostPort"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                source = volume.pop("secret")
                volume["configMap"] = {"name": source.pop("secretName"), **source}
        played.append(doc)
    data = [decoded(d) for d in docs if d["kind"] in ("ConfigMap", "Secret")]
    return data, played, ports


def decoded(doc: Doc) -> Doc:
    """A Secret as the ConfigMap that stands in for it."""
    if doc["kind"] != "Secret":
        return doc
    data = {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": doc["metadata"],
        "data": {**data, **doc.get("stringData", {})},
    }


_HANDED_OUT: set[int] = set()


def host_port() -> int:
    """A free port on 127.0.0.1 below the ephemeral range (so no outgoing connection takes it
    before podman binds it), never the same one twice in a session."""
    while True:
        port = 20000 + secrets.randbelow(12000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def create_network(name: str) -> str:
    """A network of its own, on a /24 nobody else uses; returns the subnet's prefix."""
    for _ in range(20):
        prefix = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}"
        created = subprocess.run(
            [require_binary("podman"), "network", "create", "--subnet", f"{prefix}.0/24", name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode == 0:
            return prefix
    raise RuntimeError(f"podman network create {name}: no free subnet: {created.stderr}")


@contextmanager
def play(docs: list[Doc], images: dict[str, str]) -> Iterator[dict[str, PlayedPod]]:
    """Play every workload of `docs` with the ConfigMaps and Secrets among them; tear down
    always, and fail if anything is left behind."""
    network = f"{NETWORK_PREFIX}{secrets.token_hex(4)}"
    clear_earlier_runs(docs)
    before = leftovers_of_play()
    prefix = create_network(network)
    names = [w["metadata"]["name"] for w in workloads(docs)]
    addresses = {name: f"{prefix}.{FIRST_HOST + i}" for i, name in enumerate(names)}
    data, played, ports = for_podman(docs, addresses, images)
    pods: dict[str, PlayedPod] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="kube-play-") as tmp:
            for doc in played:
                name = doc["metadata"]["name"]
                pod = pod_name(doc)
                pods[name] = PlayedPod(name, pod, addresses[name], pod_spec(doc), ports[name])
                path = Path(tmp) / f"{name}.yaml"
                path.write_text(yaml.safe_dump_all([*data, doc]))
                podman("kube", "play", "--network", network, "--ip", addresses[name], str(path))
        yield pods
    finally:
        leftovers = teardown(pods, network, before)
    assert not leftovers, f"left behind after the teardown: {leftovers}"


def clear_earlier_runs(docs: list[Doc]) -> None:
    """Remove what an interrupted earlier run left: pods of the names about to be played on
    one of the networks play() makes, then those networks and the ConfigMaps' volumes if
    unused. A pod of such a name that is anyone else's is left alone, and the run stops."""
    for doc in workloads(docs):
        pod = pod_name(doc)
        if not exists("pod", pod):
            continue
        # (A pod whose creation was cut short has no container on any network yet.)
        networks = podman("ps", "--all", "--filter", f"pod={pod}", "--format", "{{.Networks}}")
        if networks.strip() and NETWORK_PREFIX not in networks:
            raise RuntimeError(f"a pod named {pod} exists, not from these tests: remove it first")
        podman("pod", "rm", "--force", "--time", "0", pod)
    for network in podman("network", "ls", "--format", "{{.Name}}").split():
        if network.startswith(NETWORK_PREFIX):
            podman("network", "rm", network, check=False)  # refused while in use
    # play copies a ConfigMap into a volume of its name, and reuses one that exists: an old
    # copy (one a test changed, say) would be played instead of the manifest's.
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Secret") and exists("volume", doc["metadata"]["name"]):
            podman("volume", "rm", doc["metadata"]["name"], check=False)  # refused while in use


def leftovers_of_play() -> set[tuple[str, str]]:
    """The volumes and secrets podman has: play makes some for ConfigMaps and Secrets."""
    return {("volume", v) for v in podman("volume", "ls", "--quiet").split()} | {
        ("secret", s) for s in podman("secret", "ls", "--format", "{{.Name}}").split()
    }


def teardown(pods: dict[str, PlayedPod], network: str, before: set[tuple[str, str]]) -> list[str]:
    """Remove the pods, what play made for them and the network; return what is still there."""
    for pod in pods.values():
        podman("pod", "rm", "--force", "--time", "0", pod.pod, check=False)
    for kind, name in leftovers_of_play() - before:
        podman(kind, "rm", *(["--force"] if kind == "volume" else []), name, check=False)
    podman("network", "rm", "--force", network, check=False)
    left = [f"pod {p.pod}" for p in pods.values() if exists("pod", p.pod)]
    left += [f"{kind} {name}" for kind, name in leftovers_of_play() - before]
    return left + ([f"network {network}"] if exists("network", network) else [])


def exists(kind: str, name: str) -> bool:
    return (
        subprocess.run(
            [require_binary("podman"), kind, "exists", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def probe(pod: PlayedPod, container: Doc, kind: str) -> bool:
    """Ask what the kubelet asks for `kind` (livenessProbe, readinessProbe, startupProbe),
    at the pod's address; True when the container has no such probe."""
    spec = container.get(kind)
    if spec is None:
        return True
    if "exec" in spec:
        return pod.exec(container["name"], *spec["exec"]["command"]).returncode == 0
    action = spec.get("httpGet") or spec["tcpSocket"]
    port = action["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    if "tcpSocket" in spec:
        try:
            socket.create_connection((pod.ip, port), timeout=2).close()
            return True
        except OSError:
            return False
    url = f"{action.get('scheme', 'HTTP').lower()}://{pod.ip}:{port}{action.get('path', '/')}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError):
        return False


def ready(pods: dict[str, PlayedPod]) -> bool:
    return all(
        probe(pod, container, kind)
        for pod in pods.values()
        for container in pod_containers(pod.spec)
        for kind in ("startupProbe", "readinessProbe")
    )


def wait_ready(pods: dict[str, PlayedPod], timeout: float = 90.0) -> None:
    """Until every startup and readiness probe holds; a failure shows each container's log."""
    try:
        wait_for(lambda: ready(pods), timeout=timeout, what="every pod ready")
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{reports(pods)}", pytrace=False)


def reports(pods: dict[str, PlayedPod]) -> str:
    """Each container's state and last log lines, for a failure message."""
    lines = []
    for pod in pods.values():
        for container in pod_containers(pod.spec):
            name = pod.container(container["name"])
            state = podman("inspect", "--format", "{{.State.Status}}", name, check=False)
            lines.append(f"--- {name}: {state.strip()}\n{pod.logs(container['name'])[-2000:]}")
    return "\n".join(lines)
