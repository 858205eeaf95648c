"""k8s/ and its overlays render with kustomize and every object is valid for Kubernetes 1.29
and for the newest version kubernetes-validate bundles (the custom resources it does not know
by the fields that matter); every container is locked down and probed; each overlay changes
what it says it changes, and its selectors and port names meet real pods and Services."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support.kustomize import ROOT, Doc, pod_containers, render
from support.processes import free_port, wait_for
from support.tools import require, require_binary

import podkit
from podkit.options import parse_duration

OVERLAYS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "k8s" / "overlays").iterdir()
    if (p / "kustomization.yaml").is_file()
)
KUSTOMIZATIONS = [
    "k8s",
    "k8s/base",
    "k8s/sidecar",
    "k8s/ambassador",
    "k8s/adapter",
    "k8s/gitsync",
    "k8s/logagent",
    "k8s/ambassador-inpod",
    "k8s/ambassador-tcp",
    *OVERLAYS,
]
# The folders k8s/ adds to the base (k8s/kustomization.yaml).
ADDED = ["k8s/gitsync", "k8s/logagent", "k8s/ambassador-inpod", "k8s/ambassador-tcp"]
DEPLOYABLE = ["k8s", *OVERLAYS]  # what `kubectl apply -k` is meant for
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
# Custom resources: kubernetes-validate knows only Kubernetes' own kinds.
CUSTOM = {
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
VERSION = podkit.__version__  # pyproject.toml's version is read from there too
# The recommended labels, all six on every object and every pod template.
RELEASE_LABELS = {
    "app.kubernetes.io/part-of": "pod-patterns",
    "app.kubernetes.io/instance": "pod-patterns",
    "app.kubernetes.io/version": VERSION,
    "app.kubernetes.io/managed-by": "kustomize",
}
# app.kubernetes.io/component: the pattern an object shows, or a cross-cutting concern.
COMPONENTS = {
    "sidecar",
    "ambassador",
    "adapter",
    "gitsync",
    "logagent",
    "namespace",
    "network-policy",
    "monitoring",
}
# The project's own images, tagged with its version (k8s/components/release).
PROJECT_IMAGE = re.compile(r"^pod-patterns/[a-z]+:(?P<tag>.+)$")
# The Services that carry each metrics-serving container's /metrics: Service → (Deployment,
# container) whose port it targets.
METRICS_SERVICES = {
    "web-metrics": ("web", "sidecar"),
    "ambassador-metrics": ("ambassador", "ambassador"),
    "redis-metrics": ("redis", "adapter"),
    "notes-metrics": ("notes", "gitsync"),
    "site-metrics": ("site", "gitsync"),
    "counter-metrics": ("counter", "logagent"),
    "client-metrics": ("client", "ambassador"),  # the in-pod ambassador
    "redis-ambassador-metrics": ("redis-ambassador", "ambassador"),  # tcp mode
}


def by_key(docs: list[Doc]) -> dict[str, Doc]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def deployments(docs: list[Doc]) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def pods(docs: list[Doc]) -> dict[str, Doc]:
    """Each Deployment's pod template, by Deployment name."""
    return {name: d["spec"]["template"] for name, d in deployments(docs).items()}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions with In) against labels."""
    if not selector:
        return True
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr  # the only operator used here
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def selected(selector: Doc, docs: list[Doc]) -> list[str]:
    """Names of the Deployments whose pods the selector picks."""
    return sorted(
        name
        for name, template in pods(docs).items()
        if selects(selector, template["metadata"]["labels"])
    )


def container_port(pod: Doc, port: int | str) -> int | None:
    """The number of a TCP container port of the pod, given by name or number."""
    for container in pod_containers(pod):
        for p in container.get("ports", []):
            if p.get("protocol", "TCP") == "TCP" and port in (p.get("name"), p["containerPort"]):
                return int(p["containerPort"])
    return None


# -- every kustomization ---------------------------------------------------------------------
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid(path: str, version: str) -> None:
    for doc in render(path):
        if (doc["apiVersion"], doc["kind"]) in CUSTOM:
            continue  # checked by hand below
        kubernetes_validate.validate(doc, version, strict=True)


def test_k8s_is_the_base_and_the_two_sidecars_folders() -> None:
    # k8s/kustomization.yaml points at k8s/base, where the overlays find it, and adds the
    # gitsync and logagent folders with the base's namespace, labels and image tags.
    whole = by_key(render("k8s"))
    base = by_key(render("k8s/base"))
    assert {key: whole[key] for key in base} == base
    added = {f"{d['kind']}/{d['metadata']['name']}" for path in ADDED for d in render(path)}
    assert whole.keys() == base.keys() | added


def test_the_whole_set_in_its_namespace() -> None:
    docs = render("k8s")
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/ambassador",
        "ConfigMap/client-ambassador",
        "Deployment/ambassador",
        "Deployment/backend-v1",
        "Deployment/backend-v2",
        "Deployment/client",
        "Deployment/counter",
        "Deployment/gitserver",
        "Deployment/notes",
        "Deployment/redis",
        "Deployment/redis-a",
        "Deployment/redis-ambassador",
        "Deployment/redis-b",
        "Deployment/rsyslog",
        "Deployment/server1",
        "Deployment/server2",
        "Deployment/site",
        "Deployment/web",
        "Namespace/pod-patterns",
        "Service/ambassador",
        "Service/ambassador-metrics",
        "Service/backend-v1",
        "Service/backend-v2",
        "Service/client-metrics",
        "Service/counter-metrics",
        "Service/gitserver",
        "Service/notes-metrics",
        "Service/redis-a",
        "Service/redis-ambassador",
        "Service/redis-ambassador-metrics",
        "Service/redis-b",
        "Service/redis-metrics",
        "Service/rsyslog",
        "Service/server1",
        "Service/server2",
        "Service/site",
        "Service/site-metrics",
        "Service/web",
        "Service/web-metrics",
    ]
    # No Secret: the Git credentials are made by the user (gitsync/README.md), never committed.


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_object_is_in_the_namespace(path: str) -> None:
    for doc in render(path):
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "pod-patterns", doc["metadata"]["name"]


def assert_six_labels(where: str, labels: dict[str, str]) -> None:
    for key, value in RELEASE_LABELS.items():
        assert labels.get(key) == value, f"{where}: {key}"
    assert labels.get("app.kubernetes.io/name"), f"{where}: app.kubernetes.io/name"
    assert labels.get("app.kubernetes.io/component") in COMPONENTS, f"{where}: component"


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_object_and_pod_carries_the_six_recommended_labels(path: str) -> None:
    """Generated objects (the ambassador's ConfigMap) and each overlay's own included."""
    docs = render(path)
    assert docs
    for doc in docs:
        where = f"{path}: {doc['kind']}/{doc['metadata']['name']}"
        assert_six_labels(where, doc["metadata"].get("labels", {}))
        template = doc.get("spec", {}).get("template")
        if template is not None:
            assert_six_labels(f"{where} (pod)", template["metadata"].get("labels", {}))
            # A workload's pods say the same name and pattern as the workload.
            for key in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
                assert template["metadata"]["labels"][key] == doc["metadata"]["labels"][key]


def test_the_release_is_set_once_and_agrees_with_the_package() -> None:
    """One version: the component's image tags and version label, podkit.__version__
    (which scripts/build-images.sh tags the images with) and docker-compose.yml's defaults."""
    release = yaml.safe_load((ROOT / "k8s/components/release/kustomization.yaml").read_text())
    assert release["kind"] == "Component"
    tags = {i["name"]: i["newTag"] for i in release["images"]}
    assert {n: t for n, t in tags.items() if n.startswith("pod-patterns/")} == {
        f"pod-patterns/{name}": VERSION
        for name in (
            "sidecar",
            "ambassador",
            "adapter",
            "echoserver",
            "gitsync",
            "logagent",
            "gitserver",
            "rsyslog",
        )
    }
    [labels] = [entry["pairs"] for entry in release["labels"]]
    assert labels == RELEASE_LABELS
    # No other kustomization names images or tags of its own.
    for path in (ROOT / "k8s").rglob("kustomization.yaml"):
        if path.parent.name != "release":
            assert "images" not in yaml.safe_load(path.read_text()), path
    compose = (ROOT / "docker-compose.yml").read_text()
    defaults = re.findall(r"\$\{[A-Z]+_IMAGE:-pod-patterns/([a-z]+):([^}]+)\}", compose)
    assert defaults and {tag for _, tag in defaults} == {VERSION}, defaults


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_clients_services_are_cluster_ip_unless_the_loadbalancer_overlay(path: str) -> None:
    types = {
        d["metadata"]["name"]: d["spec"].get("type", "ClusterIP")
        for d in render(path)
        if d["kind"] == "Service"
    }
    balanced = {"web", "ambassador"} if path == "k8s/overlays/loadbalancer" else set()
    assert {n for n, t in types.items() if t == "LoadBalancer"} == balanced
    assert {t for t in types.values()} <= {"ClusterIP", "LoadBalancer"}


def test_the_loadbalancer_overlay_changes_only_the_two_entry_points() -> None:
    base = by_key(render("k8s/base"))
    overlay = by_key(render("k8s/overlays/loadbalancer"))
    assert overlay.keys() == base.keys()
    for key in base:
        if key in ("Service/web", "Service/ambassador"):
            changed = dict(overlay[key]["spec"])
            assert changed.pop("type") == "LoadBalancer"
            assert changed == {k: v for k, v in base[key]["spec"].items() if k != "type"}
        else:
            assert overlay[key] == base[key], key


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_container_is_locked_down_probed_and_bounded(path: str) -> None:
    for name, template in pods(render(path)).items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name  # none talks to the API
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}/{container['name']}"
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert {"requests", "limits"} <= set(container["resources"]), where
            assert ":" in container["image"], f"{where}: a tag is set (kustomize images:)"
            own = PROJECT_IMAGE.match(container["image"])
            if own:
                assert own["tag"] == VERSION, f"{where}: tagged with the project's version"
            if container in pod_containers(pod):
                # Every long-running container, native sidecars included: both probes.
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where
            # `preStop.sleep` is feature-gated off in Kubernetes 1.29: exec only.
            for handler in container.get("lifecycle", {}).values():
                assert set(handler) == {"exec"}, where


def test_the_pods_wire_up_like_the_patterns() -> None:
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for d in render("k8s")}
    web = docs["Deployment/web"]["spec"]["template"]["spec"]
    sidecar = next(c for c in web["containers"] if c["name"] == "sidecar")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["SIDECAR_UPSTREAM"] == "http://127.0.0.1:8080"  # the pod's shared localhost
    assert {m["name"] for m in sidecar["volumeMounts"]} == {"certs"}  # the shared volume
    assert docs["Service/web"]["spec"]["type"] == "ClusterIP"
    assert docs["Service/web"]["spec"]["ports"][0]["port"] == 443
    config = yaml.safe_load(docs["ConfigMap/ambassador"]["data"]["ambassador.yaml"])
    assert config["upstreams"][0].startswith("http://server1:8080 weight=3")
    assert docs["Service/ambassador"]["spec"]["ports"][0]["port"] == 80
    metrics = docs["Service/redis-metrics"]["metadata"]["annotations"]
    assert metrics["prometheus.io/scrape"] == "true" and metrics["prometheus.io/port"] == "9121"


def test_the_in_pod_ambassador_is_the_clients_way_out() -> None:
    """Burns' drawing: the client's pod holds its main container and the ambassador; the main
    container knows only localhost, where the ambassador listens (loopback only), and the
    experiment's groups and routes are the compose demo's."""
    all_docs = render("k8s")
    docs = by_key(all_docs)
    pod = docs["Deployment/client"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"client", "ambassador"}
    client = {e["name"]: e.get("value") for e in containers["client"]["env"]}
    ambassador = {e["name"]: e.get("value") for e in containers["ambassador"]["env"]}
    assert client["BACKEND_URL"] == "http://localhost:8080/"
    assert ambassador["AMBASSADOR_LISTEN"] == "127.0.0.1:8080"
    assert [p["name"] for p in containers["ambassador"]["ports"]] == ["admin"]
    config = yaml.safe_load(docs["ConfigMap/client-ambassador"]["data"]["ambassador.yaml"])
    compose = yaml.safe_load((ROOT / "compose" / "client-ambassador.yaml").read_text())
    assert config == compose
    assert config["upstreams"] == [
        "http://backend-v1:8080 weight=9",
        "http://backend-v2:8080 weight=1",
    ]
    # The upstreams are Services of the set, on the port their pods serve.
    for name in ("backend-v1", "backend-v2"):
        service = docs[f"Service/{name}"]
        assert service["spec"]["ports"][0]["port"] == 8080
        assert selected({"matchLabels": service["spec"]["selector"]}, all_docs) == [name]
    # No Service offers the client's pod but its metrics: the ambassador is not an entry.
    services = [d for d in docs.values() if d["kind"] == "Service"]
    assert [
        d["metadata"]["name"]
        for d in services
        if "client" in selected({"matchLabels": d["spec"]["selector"]}, all_docs)
    ] == ["client-metrics"]


def test_the_tcp_ambassador_balances_the_redis_replicas() -> None:
    docs = by_key(render("k8s"))
    [container] = docs["Deployment/redis-ambassador"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AMBASSADOR_MODE"] == "tcp"
    assert env["AMBASSADOR_UPSTREAMS"].split("\n")[:2] == [
        "redis-a:6379 max_fails=1 fail_timeout=10s",
        "redis-b:6379 max_fails=1 fail_timeout=10s",
    ]
    assert docs["Service/redis-ambassador"]["spec"]["ports"][0]["port"] == 6379
    replica = docs["Deployment/redis-b"]["spec"]["template"]["spec"]["containers"][0]
    assert replica["args"][-3:] == ["--replicaof", "redis-a", "6379"]


def mounts(container: Doc) -> dict[str, Doc]:
    return {m["name"]: m for m in container.get("volumeMounts", [])}


def test_the_gitsync_and_logagent_pods_share_a_volume_with_their_main_container() -> None:
    docs = by_key(render("k8s"))
    for deployment, main, helper, volume, helper_writes in [
        ("notes", "notes", "gitsync", "notes", True),  # push: reads what the main one writes
        ("site", "web", "gitsync", "git", True),  # pull: writes what the main one serves
        ("counter", "count", "logagent", "logs", False),  # reads the main one's log files
    ]:
        pod = docs[f"Deployment/{deployment}"]["spec"]["template"]["spec"]
        containers = {c["name"]: c for c in pod["containers"]}
        assert set(containers) == {main, helper}, deployment
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[volume], deployment
        shared = mounts(containers[main])[volume], mounts(containers[helper])[volume]
        assert shared[0]["mountPath"] == shared[1]["mountPath"], deployment
        assert shared[1].get("readOnly", False) is not helper_writes, deployment
    # One pusher per branch.
    assert docs["Deployment/notes"]["spec"]["replicas"] == 1
    assert docs["Deployment/notes"]["spec"]["strategy"]["type"] == "Recreate"


def test_git_credentials_are_files_from_secrets_never_values() -> None:
    docs = by_key(render("k8s"))
    expected = {"notes": "git-credentials", "site": "git-credentials", "gitserver": "gitserver"}
    for deployment, secret in expected.items():
        pod = docs[f"Deployment/{deployment}"]["spec"]["template"]["spec"]
        secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        assert secrets == [secret], deployment
        for container in pod["containers"] + pod.get("initContainers", []):
            for env in container.get("env", []):
                assert "PASSWORD" not in env["name"] or env["name"].endswith("_FILE"), env
                assert "secretKeyRef" not in env.get("valueFrom", {}), env
    push = next(
        c
        for c in docs["Deployment/notes"]["spec"]["template"]["spec"]["containers"]
        if c["name"] == "gitsync"
    )
    env = {e["name"]: e.get("value") for e in push["env"]}
    assert env["GITSYNC_PASSWORD_FILE"].startswith(mounts(push)["git-secret"]["mountPath"] + "/")
    assert env["GITSYNC_REPO"].startswith("http://gitserver:8080/")
    pull = next(
        c
        for c in docs["Deployment/site"]["spec"]["template"]["spec"]["containers"]
        if c["name"] == "gitsync"
    )
    assert "--repo=ssh://git@gitserver:2222/srv/git/notes.git" in pull["args"]
    service = docs["Service/gitserver"]["spec"]["ports"]
    assert {(p["port"], p["targetPort"]) for p in service} == {(8080, "http"), (2222, "ssh")}


# -- overlays/native-sidecars ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("deployment", "helper", "before"),
    [
        ("web", "sidecar", ["certs"]),
        ("redis", "adapter", []),
        ("notes", "gitsync", []),
        ("site", "gitsync", []),
        ("counter", "logagent", []),
        ("client", "ambassador", []),
    ],
)
def test_native_sidecars_are_init_containers_that_keep_running(
    deployment: str, helper: str, before: list[str]
) -> None:
    base = pods(render("k8s"))[deployment]["spec"]
    pod = pods(render("k8s/overlays/native-sidecars"))[deployment]["spec"]
    assert helper not in [c["name"] for c in pod["containers"]]
    assert [c["name"] for c in pod["initContainers"]] == [*before, helper]
    moved = dict(pod["initContainers"][-1])
    assert moved.pop("restartPolicy") == "Always"
    assert "livenessProbe" in moved and "readinessProbe" in moved
    # The container itself, its probes included, is the base's; so is the rest of the pod.
    assert moved == next(c for c in base["containers"] if c["name"] == helper)
    assert pod["containers"] == [c for c in base["containers"] if c["name"] != helper]
    rest = {k: v for k, v in pod.items() if k not in ("containers", "initContainers")}
    assert rest == {k: v for k, v in base.items() if k not in ("containers", "initContainers")}


def test_native_sidecars_change_nothing_else() -> None:
    base = by_key(render("k8s"))  # the base and the folders k8s/ adds
    overlay = by_key(render("k8s/overlays/native-sidecars"))
    assert overlay.keys() == base.keys()
    moved = {
        f"Deployment/{name}" for name in ("web", "redis", "notes", "site", "counter", "client")
    }
    for key in base.keys() - moved:
        assert overlay[key] == base[key], key


# -- overlays/production ---------------------------------------------------------------------
def test_production_serves_the_tls_secret_from_a_directory_mount() -> None:
    docs = render("k8s/overlays/production")
    pod = pods(docs)["web"]["spec"]
    assert "initContainers" not in pod  # no self-signed certificate
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" not in volumes["certs"]
    assert volumes["certs"]["secret"] == {"secretName": "web-tls", "defaultMode": 0o440}
    assert pod["securityContext"]["fsGroup"] == 10001  # the group that may read the files
    sidecar = next(c for c in pod["containers"] if c["name"] == "sidecar")
    mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "certs")
    assert "subPath" not in mount  # a subPath mount never receives a renewed Secret
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["SIDECAR_CERT_FILE"] == f"{mount['mountPath']}/tls.crt"
    assert env["SIDECAR_KEY_FILE"] == f"{mount['mountPath']}/tls.key"
    assert not [d for d in docs if d["kind"] == "Secret"]  # no private key in the repository


def test_production_replicas_and_pod_security() -> None:
    docs = render("k8s/overlays/production")
    replicas = {name: d["spec"]["replicas"] for name, d in deployments(docs).items()}
    assert replicas == {"web": 2, "ambassador": 2, "server1": 2, "server2": 2, "redis": 1}
    namespace = by_key(docs)["Namespace/pod-patterns"]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def test_each_disruption_budget_covers_the_pods_of_its_deployment() -> None:
    docs = render("k8s/overlays/production")
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert sorted(b["metadata"]["name"] for b in budgets) == [
        "ambassador",
        "server1",
        "server2",
        "web",
    ]
    replicas = {name: d["spec"]["replicas"] for name, d in deployments(docs).items()}
    for budget in budgets:
        name = budget["metadata"]["name"]
        assert selected(budget["spec"]["selector"], docs) == [name]
        assert budget["spec"]["maxUnavailable"] == 1 < replicas[name]  # one keeps serving


def test_the_autoscaler_scales_the_ambassador_on_its_cpu_request() -> None:
    docs = render("k8s/overlays/production")
    [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    spec = hpa["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "ambassador",
    )
    deployment = by_key(docs)["Deployment/ambassador"]
    assert spec["minReplicas"] == deployment["spec"]["replicas"] == 2 < spec["maxReplicas"]
    [metric] = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 90
    # Utilization is measured against requests: every container must have one.
    for container in pod_containers(deployment["spec"]["template"]["spec"]):
        assert container["resources"]["requests"]["cpu"], container["name"]


def test_network_policies_open_exactly_these_ports() -> None:
    docs = render("k8s/overlays/production")
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies.pop("default-deny-ingress") == {"podSelector": {}, "policyTypes": ["Ingress"]}
    templates = pods(docs)
    opened: dict[tuple[str, int], str] = {}
    for name, spec in policies.items():
        assert spec["policyTypes"] == ["Ingress"], name
        targets = selected(spec["podSelector"], docs)
        assert targets, f"{name} selects no pod"
        for rule in spec["ingress"]:
            peers = []
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    sources = selected(peer["podSelector"], docs)
                    assert sources, f"{name}: a peer selects no pod"
                    peers += sources
                else:
                    labels = peer["namespaceSelector"]["matchLabels"]
                    peers.append(f"namespace {labels['kubernetes.io/metadata.name']}")
            for port in rule["ports"]:
                assert port["protocol"] == "TCP"
                for target in targets:
                    number = container_port(templates[target]["spec"], port["port"])
                    assert number is not None, f"{name}: {target} has no port {port['port']}"
                    opened[(target, number)] = ", ".join(peers) or "anywhere"
    # Redis' 6379 is opened to nobody, the metrics ports to Prometheus' namespace only.
    assert opened == {
        ("web", 8443): "anywhere",
        ("ambassador", 8080): "anywhere",
        ("server1", 8080): "ambassador",
        ("server2", 8080): "ambassador",
        ("redis", 9121): "namespace monitoring",
        ("web", 9000): "namespace monitoring",
        ("ambassador", 9000): "namespace monitoring",
    }


# -- overlays/cert-manager -------------------------------------------------------------------
def test_cert_manager_issues_the_secret_production_mounts() -> None:
    docs = render("k8s/overlays/cert-manager")
    [cert] = [d for d in docs if d["kind"] == "Certificate"]
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["metadata"]["namespace"] == "pod-patterns"
    volumes = {v["name"]: v for v in pods(docs)["web"]["spec"]["volumes"]}
    assert cert["spec"]["secretName"] == volumes["certs"]["secret"]["secretName"]
    issuer = cert["spec"]["issuerRef"]
    assert issuer["group"] == "cert-manager.io" and issuer["kind"] == "ClusterIssuer"
    assert issuer["name"] and cert["spec"]["dnsNames"]
    # Otherwise it is the production overlay.
    rest = [d for d in docs if d["kind"] != "Certificate"]
    assert by_key(rest) == by_key(render("k8s/overlays/production"))


# -- overlays/monitoring, and the annotations ------------------------------------------------
def metrics_container(docs: list[Doc], deployment: str, container: str) -> Doc:
    pod = pods(docs)[deployment]["spec"]
    return next(c for c in pod_containers(pod) if c["name"] == container)


def test_every_service_with_metrics_has_an_annotated_metrics_service() -> None:
    """The sidecar, the ambassador, the adapter, both gitsync pods and the logagent: each a
    Service selecting exactly its pods, whose port `metrics` reaches the container's /metrics
    port, with the prometheus.io annotations naming that same port."""
    docs = render("k8s")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    annotated = {
        name
        for name, d in services.items()
        if d["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    }
    assert annotated == set(METRICS_SERVICES)
    templates = pods(docs)
    for name, (deployment, container) in METRICS_SERVICES.items():
        service = services[name]
        selector = service["spec"]["selector"]
        assert [
            d
            for d, t in templates.items()
            if selector and all(t["metadata"]["labels"].get(k) == v for k, v in selector.items())
        ] == [deployment], name
        [port] = service["spec"]["ports"]
        assert port["name"] == "metrics", name
        served = container_port(
            {"containers": [metrics_container(docs, deployment, container)]}, port["targetPort"]
        )
        annotations = service["metadata"]["annotations"]
        assert served is not None and int(annotations["prometheus.io/port"]) == served, name
        assert annotations["prometheus.io/path"] == "/metrics"
    # And no container of the project's own metrics-serving images is left out.
    for deployment, template in templates.items():
        for container in pod_containers(template["spec"]):
            image = container["image"].split(":")[0].rpartition("/")[2]
            if image in ("sidecar", "ambassador", "adapter", "gitsync", "logagent"):
                assert (deployment, container["name"]) in METRICS_SERVICES.values()


def test_the_service_monitor_scrapes_every_metrics_service_and_nothing_else() -> None:
    docs = render("k8s/overlays/monitoring")
    [monitor] = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "pod-patterns"  # the Services' own namespace
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["interval"] == "15s" and endpoint["path"] == "/metrics"
    # A target is an endpoint of a selected Service on the port the monitor names.
    scraped = sorted(
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Service"
        and selects(monitor["spec"]["selector"], d["metadata"]["labels"])
        and endpoint["port"] in [p.get("name") for p in d["spec"]["ports"]]
    )
    assert scraped == sorted(METRICS_SERVICES)
    # The overlay is k8s/ (every pattern, both sidecar folders) plus the monitoring objects.
    whole = by_key(render("k8s"))
    overlay = by_key(docs)
    assert overlay.keys() - whole.keys() == {
        "ServiceMonitor/pod-patterns",
        "PrometheusRule/pod-patterns",
    }
    assert {k: overlay[k] for k in whole} == whole


def test_the_pod_monitor_alternative_scrapes_the_same_containers() -> None:
    # Listed in no kustomization (one monitor is enough): read as a user would list it.
    monitor = yaml.safe_load((ROOT / "k8s/overlays/monitoring/podmonitor.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    docs = render("k8s/overlays/monitoring")
    ports = [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]]
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["podMetricsEndpoints"])
    scraped = set()
    for deployment in selected(monitor["spec"]["selector"], docs):
        for container in pod_containers(pods(docs)[deployment]["spec"]):
            if any(p.get("name") in ports for p in container.get("ports", [])):
                scraped.add((deployment, container["name"]))
    assert scraped == set(METRICS_SERVICES.values())


def test_the_prometheus_rule_is_the_rule_files() -> None:
    """spec.groups of the PrometheusRule equal monitoring/rules/*.yaml's groups, in file
    order (scripts/prometheus-rule.py writes it; run it after editing a rule)."""
    docs = render("k8s/overlays/monitoring")
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "prometheus"  # as the ServiceMonitor's
    files = sorted((ROOT / "monitoring" / "rules").glob("*.yaml"))
    assert files
    expected = [g for f in files for g in yaml.safe_load(f.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected, "run scripts/prometheus-rule.py"
    names = [g["name"] for g in expected]
    assert len(names) == len(set(names))


# -- overlays/signal-reload ------------------------------------------------------------------
def reloader_pod() -> Doc:
    return pods(render("k8s/overlays/signal-reload"))["ambassador"]["spec"]


def test_the_reloader_shares_the_process_namespace_and_the_uid() -> None:
    pod = reloader_pod()
    assert pod["shareProcessNamespace"] is True
    ambassador, reloader = pod["containers"]
    assert (ambassador["name"], reloader["name"]) == ("ambassador", "reloader")
    assert reloader["image"] == ambassador["image"]  # no image added
    # Same uid, so the signal needs no capability (and none is added).
    uids = {
        c.get("securityContext", {}).get("runAsUser", pod["securityContext"]["runAsUser"])
        for c in (ambassador, reloader)
    }
    assert uids == {10001}
    assert "add" not in reloader["securityContext"]["capabilities"]
    # It watches the file the ambassador reads, in the config volume the kubelet updates.
    [mount] = [m for m in ambassador["volumeMounts"] if m["name"] == "config"]
    env = {e["name"]: e.get("value") for e in ambassador["env"]}
    assert reloader["args"] == [env["AMBASSADOR_CONFIG"]]
    assert env["AMBASSADOR_CONFIG"].startswith(mount["mountPath"] + "/")
    assert [m["name"] for m in reloader["volumeMounts"]] == ["config"]
    # The ambassador's own check of the file is off: the reloader's signal is what reloads.
    assert parse_duration(env["AMBASSADOR_CONFIG_CHECK_INTERVAL"]) == 0


def test_the_reloader_sends_sighup_when_the_configmap_is_swapped(tmp_path: Path) -> None:
    """The reloader's own script, beside a real ambassador in a PID namespace of their own
    (as in the pod), on a directory laid out as the kubelet lays out a ConfigMap volume."""
    unshare = require_binary("unshare")
    require("a PID namespace", os.geteuid() == 0, "unshare --pid needs root")
    reloader = reloader_pod()["containers"][1]
    script = reloader["command"][2]

    def version(name: str, upstreams: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "ambassador.yaml").write_text(f"upstreams: {upstreams}\n")

    version("..v1", '["http://127.0.0.1:9"]')
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "ambassador.yaml").symlink_to("..data/ambassador.yaml")
    log = tmp_path / "ambassador.log"
    env = {
        **os.environ,
        "AMBASSADOR_CONFIG": str(tmp_path / "ambassador.yaml"),
        "AMBASSADOR_CONFIG_CHECK_INTERVAL": "0",  # as in the overlay: only SIGHUP reloads
        "AMBASSADOR_LISTEN": f"127.0.0.1:{free_port()}",
        "AMBASSADOR_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
        "SCRIPT": script,
        "WATCH": str(tmp_path / "ambassador.yaml"),
    }
    shell = (
        f'"{sys.executable}" -m ambassador >"{log}" 2>&1 & '
        f'"{sys.executable}" -c "$SCRIPT" "$WATCH" >"{tmp_path}/reloader.log" 2>&1 & wait'
    )
    proc = subprocess.Popen(
        [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", shell], env=env
    )
    try:
        wait_for_text(log, "listening on")
        wait_for_text(tmp_path / "reloader.log", "watching")
        # The kubelet's atomic update: the new files in a new folder, `..data` renamed over.
        version("..v2", '["http://127.0.0.1:9 weight=3", "http://127.0.0.1:10"]')
        (tmp_path / "..data_tmp").symlink_to("..v2")
        (tmp_path / "..data_tmp").rename(tmp_path / "..data")
        wait_for_text(log, "configuration reloaded (SIGHUP): http://127.0.0.1:9 weight=3")
    finally:
        proc.kill()  # unshare ignores SIGTERM; with it go the namespace and all in it
        proc.wait(timeout=10)


def wait_for_text(path: Path, text: str) -> None:
    try:
        wait_for(lambda: path.exists() and text in path.read_text(), 15, f"{text!r}")
    except TimeoutError as exc:
        pytest.fail(f"{exc} in {path.name}: {path.read_text() if path.exists() else ''}")
