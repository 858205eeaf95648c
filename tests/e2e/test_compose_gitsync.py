"""The gitsync pods of docker-compose.yml, up for real, against the compose Git server:

- push: `notes` (the main container, writing files into a shared volume) and `gitsync-push`
  (commits them and pushes over HTTP with basic auth);
- pull: `site` (a web server for the shared volume) and `gitsync-pull` (git-sync's drop-in,
  over SSH with the host key checked);
- `gitinit` (credentials and the repository), `gitserver` (smart HTTP) and `gitserver-ssh`.

A file written in the push pod is on the server's branch and then served by the pull pod; a
commit made on the server appears in the pull pod; no log line holds the password.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from support import images, metrics
from support.compose import Project, project_up
from support.gitserver_image import REPO, commit_argv, log_argv, show_argv
from support.processes import http_get, wait_for

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# compose and the polls below have their own, much shorter bounds.
pytestmark = pytest.mark.timeout(600)

SERVICES = (
    "gitinit", "gitserver", "gitserver-ssh", "notes", "gitsync-push", "site", "gitsync-pull"
)
# The push pod's debounce (2 s) plus a push; the pull pod's period (5 s) plus a fetch: these
# bounds leave room for a slow, shared machine.
PUSHED_WITHIN = 30.0
PULLED_WITHIN = 30.0

class GitPods(Project):
    def sh(self, service: str, script: str, *args: str) -> str:
        """`sh -c SCRIPT sh ARGS...` in a service's container; its stdout."""
        done = self.compose("exec", "-T", service, "sh", "-c", script, "sh", *args)
        assert done.returncode == 0, f"{service}: {done.stderr}"
        return done.stdout

    def on_server(self, path: str, ref: str = "main") -> str | None:
        """A file's text on the server's branch; None while it is not there."""
        done = self.compose("exec", "-T", "gitserver", *show_argv(path, ref))
        return done.stdout if done.returncode == 0 else None

    def served(self, path: str) -> str | None:
        """A file as the pull pod's web server serves it; None while it answers otherwise."""
        status, text = http_get(self.url("SITE_HOST_PORT", f"/{path}"), 5)
        return text if status == 200 else None

    def admin(self, variable: str, path: str) -> tuple[int, str]:
        return http_get(self.url(variable, path), 5)


@pytest.fixture(scope="module")
def gitsync_images(demo_images: dict[str, str]) -> dict[str, str]:
    """demo_images checks for Compose v2 (and builds the adapter pod's images)."""
    return images.build("gitsync", "gitserver", "echoserver")


@pytest.fixture(scope="module")
def pods(gitsync_images: dict[str, str]) -> Iterator[GitPods]:
    with project_up(
        GitPods,
        "gitsync",
        gitsync_images,
        ["SITE_HOST_PORT", "GITSYNC_PUSH_ADMIN_HOST_PORT", "GITSYNC_PULL_ADMIN_HOST_PORT"],
        SERVICES,
    ) as pods:
        yield pods


def test_a_file_written_in_the_push_pod_is_pushed_then_served_by_the_pull_pod(
    pods: GitPods,
) -> None:
    name = f"e2e-{secrets.token_hex(4)}.txt"
    text = f"written by the main container {secrets.token_hex(8)}\n"
    pods.sh("notes", 'printf "%s" "$2" > "/notes/$1"', name, text)

    assert wait_for(lambda: pods.on_server(name) == text, PUSHED_WITHIN, f"{name} on the server")
    author = pods.compose("exec", "-T", "gitserver",
                          *log_argv("-1", "--format=%an <%ae>", "main", "--", name))
    assert author.stdout.strip() == "notes pod <notes@pod-patterns.local>", author.stdout

    # ... and from the server, over SSH, into the pull pod, where its web server has it.
    assert wait_for(lambda: pods.served(name) == text, PULLED_WITHIN, f"{name} served by site")


def test_a_commit_on_the_server_appears_in_the_pull_pod(pods: GitPods) -> None:
    name = f"from-the-server-{secrets.token_hex(4)}.txt"
    text = f"committed on the server {secrets.token_hex(8)}\n"
    # The push pod pushes now and then too: a lost race on update-ref is tried again.
    commit = wait_for(
        lambda: pods.compose("exec", "-T", "gitserver", *commit_argv(name, text)).stdout.strip(),
        30,
        "a commit on the server",
    )

    assert wait_for(lambda: pods.served(name) == text, PULLED_WITHIN, f"{name} served by site")
    # The link points at a worktree of the commit (or of a later one the push pod made).
    link = pods.sh("gitsync-pull", "readlink /git/notes").strip()
    assert link.startswith(".worktrees/"), link
    ancestor = pods.compose("exec", "-T", "gitserver", "git", "--git-dir", REPO,
                            "merge-base", "--is-ancestor", commit, link.rsplit("/", 1)[1])
    assert ancestor.returncode == 0, (commit, link, ancestor.stderr)


def test_the_pods_are_wired_and_ready(pods: GitPods) -> None:
    info = {service: pods.inspect(service) for service in SERVICES}
    assert info["gitinit"]["State"]["Status"] == "exited"
    assert info["gitinit"]["State"]["ExitCode"] == 0
    # Each sidecar shares its main container's network namespace, as in a pod.
    for sidecar, main in (("gitsync-push", "notes"), ("gitsync-pull", "site"),
                          ("gitserver-ssh", "gitserver")):
        assert info[sidecar]["HostConfig"]["NetworkMode"] == f"container:{info[main]['Id']}"
    for service in SERVICES[1:]:
        assert info[service]["HostConfig"]["ReadonlyRootfs"] is True, service
        assert info[service]["Config"]["User"] == "10001:10001", service
        assert info[service]["State"]["Health"]["Status"] == "healthy", service

    for variable in ("GITSYNC_PUSH_ADMIN_HOST_PORT", "GITSYNC_PULL_ADMIN_HOST_PORT"):
        assert pods.admin(variable, "/readyz")[0] == 200, variable
        status, text = pods.admin(variable, "/metrics")
        assert status == 200
        families = metrics.parse(text)
        assert metrics.value(families, "git_sync_count_total", status="success") >= 1, variable
        for kind in ("auth", "network"):
            assert metrics.value(families, "gitsync_failures_total", kind=kind) == 0, variable


def test_no_log_line_holds_the_password(pods: GitPods) -> None:
    password = pods.sh("gitserver", "cat /etc/gitserver/secrets/password").strip()
    assert len(password) >= 32
    logs = pods.compose("logs", "--no-color", *SERVICES)
    assert logs.returncode == 0 and "gitsync" in logs.stdout, logs.stderr
    assert password not in logs.stdout + logs.stderr
