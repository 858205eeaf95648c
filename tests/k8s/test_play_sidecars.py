"""The gitsync and logagent pods of `kubectl kustomize k8s/`, run with podman kube play (see
support/podman.py), with the two Secrets k8s/gitsync needs made as a user makes them (the
gitserver image's `credentials` command, then Secrets of its files):

- a file written by the push pod's main container lands on the Git server (HTTP, basic auth);
- a commit made on the server appears in the pull pod and is served by its main container
  (SSH, host key checked);
- a log line written by the logagent pod's main container appears on the agent's stdout and
  in rsyslog, with the pod's name from the downward API;
- every probe answers as the kubelet asks it; every container runs locked down.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
from support import images
from support.gitserver_image import commit_argv, make_credentials, show_argv
from support.kustomize import Doc, pod_containers, render
from support.podman import PlayedPod, load_images, play, probe, wait_ready
from support.processes import http_get, wait_for

pytestmark = pytest.mark.timeout(600)

WORKLOADS = ("gitserver", "notes", "site", "counter", "rsyslog")
SERVICES = ("gitsync", "logagent", "gitserver", "rsyslog", "echoserver")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
SYNCED_WITHIN = 45.0  # push debounce 2 s, pull period 5 s, on a slow shared machine
ARRIVES_WITHIN = 20.0
# Which files of `gitserver credentials` each Secret holds (gitsync/README.md).
SECRET_FILES = {
    "gitserver": ("password", "host_key", "authorized_keys"),
    "git-credentials": ("password", "ssh", "known_hosts"),
}


def secret(name: str, files: dict[str, str]) -> Doc:
    """What `kubectl -n pod-patterns create secret generic NAME --from-file=...` makes."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "pod-patterns"},
        "type": "Opaque",
        "data": {
            key: base64.b64encode(files[key].encode()).decode() for key in SECRET_FILES[name]
        },
    }


@pytest.fixture(scope="module")
def pods(
    docker_client: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, PlayedPod]]:
    env = images.build(*SERVICES)
    load_images([env[f"{name.upper()}_IMAGE"] for name in SERVICES])
    files = make_credentials(
        env["GITSERVER_IMAGE"], tmp_path_factory.mktemp("git-credentials"), "gitserver"
    )
    docs = [
        d
        for d in render("k8s")
        if d["kind"] in ("ConfigMap", "Service")
        or (d["kind"] == "Deployment" and d["metadata"]["name"] in WORKLOADS)
    ]
    with play([*(secret(name, files) for name in SECRET_FILES), *docs], images={}) as played:
        wait_ready({name: played[name] for name in WORKLOADS})
        yield played


def test_every_probe_answers_as_the_kubelet_asks(pods: dict[str, PlayedPod]) -> None:
    asked = []
    for name in WORKLOADS:
        pod = pods[name]
        for container in pod_containers(pod.spec):
            for kind in PROBES:
                if kind in container:
                    asked.append(f"{pod.name}/{container['name']}/{kind}")
                    assert probe(pod, container, kind), asked[-1]
    # Exec probes of the main containers, TCP probes of sshd and rsyslog, HTTP of the rest.
    for expected in ("notes/notes/livenessProbe", "gitserver/ssh/readinessProbe",
                     "rsyslog/rsyslog/livenessProbe", "site/web/readinessProbe",
                     "counter/logagent/startupProbe"):
        assert expected in asked, asked


def test_containers_run_locked_down(pods: dict[str, PlayedPod]) -> None:
    for name in WORKLOADS:
        pod = pods[name]
        for container in pod_containers(pod.spec):
            where = f"{pod.name}/{container['name']}"
            status = pod.exec(container["name"], "cat", "/proc/1/status")
            assert status.returncode == 0, (where, status.stderr)
            fields = dict(line.split(":\t", 1) for line in status.stdout.splitlines())
            assert fields["Uid"].split()[0] == "10001", where
            assert fields["CapEff"].strip() == "0000000000000000", where
            assert fields["NoNewPrivs"].strip() == "1", where
            assert fields["Seccomp"].strip() == "2", where
            touch = pod.exec(container["name"], "touch", "/written")
            assert touch.returncode != 0 and "Read-only file system" in touch.stderr, where


def on_server(pods: dict[str, PlayedPod], path: str) -> str | None:
    done = pods["gitserver"].exec("http", *show_argv(path))
    return done.stdout if done.returncode == 0 else None


def test_a_file_written_in_the_push_pod_lands_on_the_git_server(
    pods: dict[str, PlayedPod],
) -> None:
    name = f"k8s-{secrets.token_hex(4)}.md"
    text = f"written in the pod {secrets.token_hex(8)}\n"
    done = pods["notes"].exec("notes", "sh", "-c", 'printf "%s" "$2" > "/notes/$1"', "sh",
                              name, text)
    assert done.returncode == 0, done.stderr

    try:
        wait_for(lambda: on_server(pods, name) == text, SYNCED_WITHIN, f"{name} on the server")
    except TimeoutError:
        pytest.fail(f"{name} not pushed:\n{pods['notes'].logs('gitsync')[-3000:]}")
    # The password from the Secret is in no log line of the pod.
    password = pods["gitserver"].exec("http", "cat", "/etc/gitserver/secrets/password")
    assert password.returncode == 0 and password.stdout.strip()
    assert password.stdout.strip() not in pods["notes"].logs("gitsync")


def test_a_commit_on_the_server_appears_in_the_pull_pod(pods: dict[str, PlayedPod]) -> None:
    name = f"from-the-server-{secrets.token_hex(4)}.txt"
    text = f"committed on the server {secrets.token_hex(8)}\n"
    # A concurrent push from the notes pod makes update-ref fail: then commit again.
    wait_for(lambda: pods["gitserver"].exec("http", *commit_argv(name, text)).returncode == 0,
             30, "a commit on the server")

    def served() -> bool:
        status, body = http_get(pods["site"].url("http", f"/{name}"), 5)
        return status == 200 and body == text

    try:
        wait_for(served, SYNCED_WITHIN, f"{name} served by the pull pod")
    except TimeoutError:
        pytest.fail(f"{name} not pulled:\n{pods['site'].logs('gitsync')[-3000:]}")
    link = pods["site"].exec("gitsync", "readlink", "/git/notes")
    assert link.stdout.startswith(".worktrees/"), link


def test_a_log_line_reaches_the_agents_stdout_and_rsyslog(pods: dict[str, PlayedPod]) -> None:
    counter = pods["counter"]
    marker = f"k8s marker {secrets.token_hex(8)}"
    done = counter.exec("count", "sh", "-c", 'echo "$1" >> /var/log/app/1.log', "sh", marker)
    assert done.returncode == 0, done.stderr

    wait_for(lambda: marker in counter.logs("logagent"), ARRIVES_WITHIN, "the marker on stdout")

    def shipped() -> list[str]:
        return [line for line in pods["rsyslog"].logs("rsyslog").splitlines()
                if line.endswith(marker)]

    [line] = wait_for(shipped, ARRIVES_WITHIN, "the marker in rsyslog")
    # Structured data from the downward API: which file, pod and namespace it came from.
    assert 'file="/var/log/app/1.log"' in line, line
    assert f'pod="{counter.pod}"' in line and 'namespace="pod-patterns"' in line, line
    # The counter's own lines flow too, from both files.
    logs = counter.logs("logagent")
    assert ": " in logs and " INFO " in logs


def test_the_agents_checkpoint_is_in_its_emptydir(pods: dict[str, PlayedPod]) -> None:
    listing = pods["counter"].exec("logagent", "ls", "-A", "/var/lib/logagent")
    # Written once an output acknowledged a batch; the emptyDir outlives a container restart.
    assert listing.returncode == 0 and listing.stdout.strip(), listing
