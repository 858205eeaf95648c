"""The gitsync image as it ships, beside a main container the way a pod runs them, against the
gitserver image (smart HTTP with basic auth in one container, sshd in a second one sharing its
network namespace, the same repositories volume).

Each pod: the main container (the echoserver image) owns the network namespace and a shared
volume (a tmpfs owned by uid 10001, as an emptyDir); gitsync joins the namespace
(`network_mode=container:`) and mounts the volume, the credentials read-only at
/etc/git-secret, and tmpfs at /tmp (its HOME) and, in push mode, at /state (its Git directory).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import images, metrics
from support.containers import assert_pid1_is, wait_healthy
from support.gitserver_image import commit_argv, make_credentials, show_argv
from support.processes import http_get, wait_for
from testcontainers.core.container import DockerContainer

pytestmark = pytest.mark.timeout(600)

ADMIN_PORT = 2020
READY_WITHIN = 30.0
SYNCED_WITHIN = 30.0
STOP_WITHIN = 12.0  # a last push within gitsync's 10 s shutdown bound
TMPFS_10001 = "uid=10001,gid=10001"
HTTP_REPO = "http://gitserver:8080/git/notes.git"
SSH_REPO = "ssh://git@gitserver:2222/srv/git/notes.git"


def mounted(
    container: DockerContainer, volumes: dict[str, tuple[str, str]], tmpfs: tuple[str, ...] = ()
) -> DockerContainer:
    """`volumes`: source (a host path or a volume name) -> (path, mode); `tmpfs`: paths, each
    a tmpfs owned by uid 10001 (testcontainers' own tmpfs helper takes only a size)."""
    for source, (path, mode) in volumes.items():
        container.with_volume_mapping(source, path, mode)
    for path in tmpfs:
        container.tmpfs[path] = TMPFS_10001
    return container


@pytest.fixture(scope="module")
def pod_images(docker_client: object) -> dict[str, str]:
    return images.build("gitsync", "gitserver", "echoserver")


@dataclass
class GitServer:
    http: DockerContainer  # owns the namespace; its address is "gitserver" to the pods
    ssh: DockerContainer
    credentials: Path  # password, ssh, known_hosts, ... as `gitserver credentials` made them
    ip: str

    def run(self, argv: list[str]) -> tuple[int | None, str]:
        result = self.http.exec(argv)
        return result.exit_code, result.output.decode()

    def file(self, path: str) -> str | None:
        code, text = self.run(show_argv(path))
        return text if code == 0 else None

    def commit(self, path: str, text: str) -> str:
        code, out = self.run(commit_argv(path, text))
        assert code == 0, out
        return out.strip()

    @property
    def password(self) -> str:
        return (self.credentials / "password").read_text().strip()


@pytest.fixture(scope="module")
def git_server(
    pod_images: dict[str, str], docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GitServer]:
    image = pod_images["GITSERVER_IMAGE"]
    credentials = tmp_path_factory.mktemp("git-credentials")
    make_credentials(image, credentials, "gitserver")
    repos = docker_client.volumes.create()
    try:
        docker_client.containers.run(
            image, ["init"], remove=True, read_only=True, volumes={repos.name: {"bind": "/srv/git"}}
        )
        mounts = {
            repos.name: ("/srv/git", "rw"),
            str(credentials): ("/etc/gitserver/secrets", "ro"),
        }
        http = mounted(DockerContainer(image), mounts, ("/tmp",))
        http.with_command("http").with_kwargs(read_only=True)
        http.start()
        try:
            ssh = mounted(DockerContainer(image), mounts).with_command("ssh").with_kwargs(
                read_only=True, network_mode=f"container:{http.get_container_id()}"
            )
            ssh.start()
            try:
                wait_for(lambda: http.exec(["gitserver", "health"]).exit_code == 0
                         and ssh.exec(["gitserver", "health"]).exit_code == 0,
                         READY_WITHIN, "gitserver: HTTP and SSH accepting")
                info = docker_client.containers.get(http.get_container_id())
                yield GitServer(http, ssh, credentials, info.attrs["NetworkSettings"]["IPAddress"])
            finally:
                ssh.stop()
        finally:
            http.stop()
    finally:
        repos.remove(force=True)


@dataclass
class Pod:
    main: DockerContainer  # owns the namespace and the shared volume, publishes the admin port
    gitsync: DockerContainer
    directory: str  # where both mount the shared volume

    def admin(self, path: str) -> tuple[int, str]:
        port = int(self.main.get_exposed_port(ADMIN_PORT))
        return http_get(f"http://127.0.0.1:{port}{path}", timeout=2)

    def sh(self, script: str, *args: str) -> tuple[int | None, str]:
        """A shell in the main container: what the application would do to the files."""
        result = self.main.exec(["sh", "-c", script, "sh", *args])
        return result.exit_code, result.output.decode()


StartPod = Callable[..., Pod]


@pytest.fixture
def start_pod(
    pod_images: dict[str, str], git_server: GitServer, docker_client: Any
) -> Iterator[StartPod]:
    """A pod factory: the main container, then gitsync with `env`, ready (or just started
    with ready=False); everything removed at the end."""
    started: list[DockerContainer] = []
    volumes: list[Any] = []

    def start(directory: str, env: dict[str, str], ready: bool = True, **kwargs: Any) -> Pod:
        volume = docker_client.volumes.create(
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"{TMPFS_10001},mode=0750"}
        )
        volumes.append(volume)
        shared = {volume.name: (directory, "rw")}
        main = (
            mounted(DockerContainer(pod_images["ECHOSERVER_IMAGE"]), shared)
            .with_env("ECHO_LISTEN", "127.0.0.1:8080")
            .with_exposed_ports(ADMIN_PORT)
            # The Git server's name, for the namespace (joined containers share /etc/hosts).
            .with_kwargs(read_only=True, extra_hosts={"gitserver": git_server.ip})
        )
        main.start()
        started.append(main)
        gitsync = mounted(
            DockerContainer(pod_images["GITSYNC_IMAGE"]),
            {**shared, str(git_server.credentials): ("/etc/git-secret", "ro")},
            ("/tmp", "/state"),
        ).with_kwargs(
            read_only=True, network_mode=f"container:{main.get_container_id()}", **kwargs
        )
        for key, value in env.items():
            gitsync.with_env(key, value)
        gitsync.start()
        started.append(gitsync)
        pod = Pod(main, gitsync, directory)
        if ready:
            try:
                wait_for(lambda: pod.admin("/readyz")[0] == 200, READY_WITHIN, "gitsync: /readyz")
            except BaseException:
                print(gitsync.get_logs())
                raise
        return pod

    yield start
    for container in reversed(started):
        try:
            docker_client.containers.get(container.get_container_id()).remove(force=True)
        except Exception:  # already gone
            pass
    for volume in volumes:
        volume.remove(force=True)


def push_env(**extra: str) -> dict[str, str]:
    return {
        "GITSYNC_MODE": "push",
        "GITSYNC_REPO": HTTP_REPO,
        "GITSYNC_ROOT": "/state",
        "GITSYNC_PUSH_DIR": "/notes",
        "GITSYNC_PERIOD": "2s",
        "GITSYNC_USERNAME": "git",
        "GITSYNC_PASSWORD_FILE": "/etc/git-secret/password",
        **extra,
    }


def pull_env(**extra: str) -> dict[str, str]:
    return {
        "GITSYNC_REPO": SSH_REPO,
        "GITSYNC_REF": "main",
        "GITSYNC_ROOT": "/git",
        "GITSYNC_LINK": "notes",
        "GITSYNC_PERIOD": "1s",
        "GITSYNC_SSH_KEY_FILE": "/etc/git-secret/ssh",
        "GITSYNC_SSH_KNOWN_HOSTS_FILE": "/etc/git-secret/known_hosts",
        **extra,
    }


def test_push_a_file_the_main_container_writes_reaches_the_server(
    start_pod: StartPod, git_server: GitServer
) -> None:
    pod = start_pod("/notes", push_env(GITSYNC_DEBOUNCE="500ms"))
    name = f"note-{secrets.token_hex(4)}.md"
    text = f"a note {secrets.token_hex(8)}\n"
    assert pod.sh('printf "%s" "$2" > "/notes/$1"', name, text)[0] == 0

    wait_for(lambda: git_server.file(name) == text, SYNCED_WITHIN, f"{name} on the server")
    families = metrics.parse(pod.admin("/metrics")[1])
    assert metrics.value(families, "gitsync_commits_total") >= 1
    assert metrics.value(families, "gitsync_pushed_bytes_total") > 0
    # The first start seeded the main container's directory from the remote.
    assert pod.sh("cat /notes/README.md")[1].startswith("# notes")


def test_pull_over_ssh_publishes_a_server_commit_to_the_main_container(
    start_pod: StartPod, git_server: GitServer
) -> None:
    pod = start_pod("/git", pull_env())
    assert pod.sh("cat /git/notes/README.md")[1].startswith("# notes")
    name = f"pulled-{secrets.token_hex(4)}.txt"
    text = f"from the server {secrets.token_hex(8)}\n"
    commit = wait_for(lambda: git_server.commit(name, text), 30, "a commit on the server")

    wait_for(lambda: pod.sh('cat "/git/notes/$1"', name) == (0, text), SYNCED_WITHIN,
             f"{name} in the pod")
    link = pod.sh("readlink /git/notes")[1].strip()
    assert link == f".worktrees/{commit}" or git_server.run(
        ["git", "--git-dir", "/srv/git/notes.git", "merge-base", "--is-ancestor", commit,
         link.rsplit("/", 1)[-1]]
    )[0] == 0, (link, commit)


def test_runs_as_uid_10001_on_a_read_only_root(start_pod: StartPod, docker_client: Any) -> None:
    pod = start_pod("/git", pull_env())
    assert_pid1_is(docker_client.containers.get(pod.gitsync.get_container_id()), "gitsync")
    # The volume it writes is the pod's, and its files are the service user's.
    assert pod.sh("stat -c %u /git/.worktrees")[1].strip() == "10001"


def test_sigterm_pushes_the_pending_change_and_exits_0(
    start_pod: StartPod, git_server: GitServer, docker_client: Any
) -> None:
    # A debounce far longer than the test: only the shutdown's last cycle can push it.
    pod = start_pod("/notes", push_env(GITSYNC_DEBOUNCE="60s", GITSYNC_PERIOD="60s"))
    name = f"pending-{secrets.token_hex(4)}.txt"
    assert pod.sh('echo pending > "/notes/$1"', name)[0] == 0
    time.sleep(1)  # noticed (inotify), not yet committed
    assert git_server.file(name) is None
    container = docker_client.containers.get(pod.gitsync.get_container_id())

    started = time.monotonic()
    container.stop(timeout=20)
    elapsed = time.monotonic() - started

    container.reload()
    logs = container.logs().decode()
    assert container.attrs["State"]["ExitCode"] == 0, logs
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"
    assert git_server.file(name) == "pending\n", logs


def test_image_healthcheck_turns_healthy(start_pod: StartPod, docker_client: Any) -> None:
    """The image's own HEALTHCHECK (podkit.healthcheck against /healthz), probed every second."""
    pod = start_pod(
        "/git",
        pull_env(),
        healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3},
    )
    container = docker_client.containers.get(pod.gitsync.get_container_id())
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "gitsync"]
    wait_healthy(container, READY_WITHIN)


def test_wrong_password_fails_clearly_without_printing_it(
    start_pod: StartPod, git_server: GitServer, docker_client: Any, tmp_path: Path
) -> None:
    wrong = f"not-the-password-{secrets.token_hex(8)}"
    pod = start_pod(
        "/git",
        {**pull_env(), "GITSYNC_REPO": HTTP_REPO, "GITSYNC_USERNAME": "git",
         "GITSYNC_PASSWORD": wrong, "GITSYNC_ONE_TIME": "true"},
        ready=False,
    )
    container = docker_client.containers.get(pod.gitsync.get_container_id())
    result = container.wait(timeout=READY_WITHIN)
    logs = container.logs().decode()
    assert result["StatusCode"] == 1, logs
    assert "auth" in logs.lower(), logs
    assert wrong not in logs and git_server.password not in logs


def test_bad_option_exits_2_with_one_line(pod_images: dict[str, str], docker_client: Any) -> None:
    container = docker_client.containers.run(
        pod_images["GITSYNC_IMAGE"],
        detach=True,
        read_only=True,
        environment={"GITSYNC_REPO": HTTP_REPO, "GITSYNC_ROOT": "/git", "GITSYNC_PERIOD": "soon"},
    )
    try:
        result = container.wait(timeout=READY_WITHIN)
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 2, logs
    lines = logs.strip().splitlines()
    assert len(lines) == 1, logs
    assert "GITSYNC_PERIOD" in lines[0] and "soon" in lines[0], lines[0]
