"""Two overlays of k8s/, played with podman kube play (see support/podman.py): production's
sidecar serving a TLS Secret, and signal-reload's shared process namespace. (Their own
modules: the base's played pods, test_play.py's, have the same names.)"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from pathlib import Path

import trustme
from support import images
from support.kustomize import Doc, render
from support.podman import PlayedPod, load_images, play, probe, split, wait_ready
from support.processes import wait_for
from support.sidecar_fixtures import Reply, der, read_reply, write_pair


def workloads_of(path: str, *names: str) -> list[Doc]:
    """The named Deployments of a kustomization, with the ConfigMaps and Services around them."""
    return [
        d
        for d in render(path)
        if d["kind"] in ("ConfigMap", "Service")
        or (d["kind"] == "Deployment" and d["metadata"]["name"] in names)
    ]


def test_production_sidecar_serves_the_tls_secret(docker_client: object, tmp_path: Path) -> None:
    env = images.build("sidecar", "echoserver")
    load_images([env["SIDECAR_IMAGE"], env["ECHOSERVER_IMAGE"]])
    ca = trustme.CA()
    leaf = ca.issue_cert("web", "web.pod-patterns.svc")
    cert, key = write_pair(leaf, tmp_path / "tls.crt", tmp_path / "tls.key")
    # What `kubectl create secret tls web-tls --cert=... --key=...` makes.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-tls", "namespace": "pod-patterns"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert.read_bytes()).decode(),
            "tls.key": base64.b64encode(key.read_bytes()).decode(),
        },
    }
    with play([secret, *workloads_of("k8s/overlays/production", "web")], images={}) as played:
        web = played["web"]
        wait_ready(played)
        context = ssl.create_default_context()
        ca.configure_trust(context)
        # Verified against the Secret's CA, for the name in it: the Secret, not a self-signed
        # pair, is what the sidecar serves.
        reply, served = get_web(web, context)
        assert served == der(leaf)
        assert reply.status == 200
        assert reply.header("X-Echo-Server") == web.pod
        assert [c["name"] for c in web.spec.get("initContainers", [])] == []
        # A renewal reaches the sidecar through the directory mount: the new pair written
        # where play keeps the volume (the kubelet's `..data` swap is proven by the sidecar's
        # integration tests), served without a restart.
        renewed = ca.issue_cert("web", "web.pod-patterns.svc")
        new_cert, new_key = write_pair(renewed, tmp_path / "new.crt", tmp_path / "new.key")
        certs = web.mount_source("sidecar", "/certs")
        replace_file(certs / "tls.key", new_key.read_text())
        replace_file(certs / "tls.crt", new_cert.read_text())
        wait_for(lambda: get_web(web, context)[1] == der(renewed), timeout=30, what="the renewal")
        assert web.restarts("sidecar") == 0


def get_web(web: PlayedPod, context: ssl.SSLContext) -> tuple[Reply, bytes | None]:
    """One GET through the sidecar, as `web` in SNI; the reply and the certificate served."""
    with (
        socket.create_connection(("127.0.0.1", web.host_ports["https"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="web") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        return read_reply(tls.makefile("rb")), tls.getpeercert(binary_form=True)


def test_signal_reload_reloader_signals_the_ambassador(docker_client: object) -> None:
    env = images.build("ambassador", "echoserver")
    load_images([env["AMBASSADOR_IMAGE"], env["ECHOSERVER_IMAGE"]])
    docs = workloads_of("k8s/overlays/signal-reload", "ambassador", "server1", "server2")
    with play(docs, images={}) as played:
        ambassador = played["ambassador"]
        wait_ready(played)
        reloader = next(c for c in ambassador.spec["containers"] if c["name"] == "reloader")
        # Its liveness probe holds only while it sees the ambassador's process: the process
        # namespace is shared.
        assert probe(ambassador, reloader, "livenessProbe")
        assert split(ambassador, 400) == {"server1": 300, "server2": 100}
        # A ConfigMap update as the kubelet makes it reach the file: a new inode at the path
        # (podman copied the ConfigMap into a volume once; the test writes the update there).
        config = ambassador.mount_source("ambassador", "/etc/ambassador") / "ambassador.yaml"
        replace_file(config, config.read_text().replace("weight=3 ", ""))
        # The ambassador checks nothing itself here (interval 0): only the reloader's SIGHUP,
        # sent across the containers without a capability, can have reloaded it.
        wait_for(
            lambda: "configuration reloaded (SIGHUP)" in ambassador.logs("ambassador"),
            timeout=15,
            what="the ambassador's reload",
        )
        assert "SIGHUP to" in ambassador.logs("reloader")
        assert split(ambassador, 400) == {"server1": 200, "server2": 200}


def replace_file(path: Path, text: str) -> None:
    """A file replaced in one step, readable by the pod's uid: a new inode at the path."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(text)
    staged.chmod(0o644)
    os.replace(staged, path)
