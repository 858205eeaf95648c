"""k8s/ renders with kustomize and every object is valid for Kubernetes 1.29 and for the
newest version kubernetes-validate bundles; every container is locked down and probed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from support.tools import require_binary

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = ["k8s", "k8s/sidecar", "k8s/ambassador", "k8s/adapter"]
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def render(path: str) -> list[dict[str, Any]]:
    kubectl = require_binary("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid(path: str, version: str) -> None:
    for doc in render(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_whole_set_in_its_namespace() -> None:
    docs = render("k8s")
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/ambassador",
        "Deployment/ambassador",
        "Deployment/redis",
        "Deployment/server1",
        "Deployment/server2",
        "Deployment/web",
        "Namespace/pod-patterns",
        "Service/ambassador",
        "Service/redis-metrics",
        "Service/server1",
        "Service/server2",
        "Service/web",
    ]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "pod-patterns"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "pod-patterns"


def test_every_container_is_locked_down_probed_and_bounded() -> None:
    for doc in render("k8s"):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod.get("initContainers", []) + pod["containers"]:
            name = f"{doc['metadata']['name']}/{container['name']}"
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert {"requests", "limits"} <= set(container["resources"]), name
            if container in pod["containers"]:
                assert "livenessProbe" in container, name
        for container in pod["containers"]:
            image = container["image"]
            assert ":" in image, f"{image}: a tag is set (kustomize images:)"


def test_the_pods_wire_up_like_the_patterns() -> None:
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for d in render("k8s")}
    web = docs["Deployment/web"]["spec"]["template"]["spec"]
    sidecar = next(c for c in web["containers"] if c["name"] == "sidecar")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["SIDECAR_UPSTREAM"] == "http://127.0.0.1:8080"  # the pod's shared localhost
    assert {m["name"] for m in sidecar["volumeMounts"]} == {"certs"}  # the shared volume
    assert docs["Service/web"]["spec"]["type"] == "LoadBalancer"
    assert docs["Service/web"]["spec"]["ports"][0]["port"] == 443
    config = yaml.safe_load(docs["ConfigMap/ambassador"]["data"]["ambassador.yaml"])
    assert config["upstreams"][0].startswith("http://server1:8080 weight=3")
    assert docs["Service/ambassador"]["spec"]["ports"][0]["port"] == 80
    metrics = docs["Service/redis-metrics"]["metadata"]["annotations"]
    assert metrics["prometheus.io/scrape"] == "true" and metrics["prometheus.io/port"] == "9121"
