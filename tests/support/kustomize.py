"""k8s/ rendered with `kubectl kustomize`, as `kubectl apply -k` would send it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.tools import require_binary

ROOT = Path(__file__).resolve().parents[2]

Doc = dict[str, Any]


def render(path: str) -> list[Doc]:
    """The objects of the kustomization at `path` (relative to the repository)."""
    return [doc for doc in yaml.safe_load_all(kustomize(path)) if doc]


@functools.cache
def kustomize(path: str) -> str:
    kubectl = require_binary("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def pod_containers(pod: Doc) -> list[Doc]:
    """The containers that run for the pod's life: regular ones and native sidecars."""
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return sidecars + list(pod["containers"])


def service_selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A Service's selector (a plain map; an empty one selects nothing) against labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
