"""The logagent image as it ships, beside a main container the way a pod runs them: the main
container (the echoserver image) owns the network namespace and writes log files into a
shared volume (a tmpfs owned by uid 10001, as an emptyDir); the agent joins the namespace,
mounts the logs read-only and keeps its checkpoints in a volume of its own that outlives the
container. Lines are numbered so that every check counts lost lines and duplicates.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import images, metrics
from support.containers import assert_pid1_is, wait_healthy
from support.processes import http_get, wait_for
from testcontainers.core.container import DockerContainer

pytestmark = pytest.mark.timeout(600)

ADMIN_PORT = 9880
READY_WITHIN = 30.0
ARRIVES_WITHIN = 20.0
STOP_WITHIN = 5.0
LOGS = "/var/log/app"
STATE = "/var/lib/logagent"
LINE = re.compile(rb"^line (\d+)$", re.M)


@pytest.fixture(scope="module")
def pod_images(docker_client: object) -> dict[str, str]:
    return images.build("logagent", "rsyslog", "echoserver")


@dataclass
class Pod:
    main: DockerContainer  # owns the namespace and the logs volume, publishes the admin port
    logs: str  # the shared volume of log files
    state: str  # the agent's checkpoint volume

    def write(self, first: int, last: int, name: str = "app.log") -> None:
        """Lines "line N" for N in first..last, appended to a log file by the main container."""
        done = self.main.exec(["sh", "-c", f'seq -f "line %g" {first} {last} >> {LOGS}/{name}'])
        assert done.exit_code == 0, done.output

    def admin(self, path: str) -> tuple[int, str]:
        port = int(self.main.get_exposed_port(ADMIN_PORT))
        return http_get(f"http://127.0.0.1:{port}{path}", timeout=2)


def numbers(container: Any) -> list[int]:
    """The numbers of the lines the agent printed on stdout, in order (its own log is stderr)."""
    return [int(n) for n in LINE.findall(container.logs(stdout=True, stderr=False))]


StartAgent = Callable[..., Any]


@pytest.fixture
def pod(pod_images: dict[str, str], docker_client: Any) -> Iterator[Pod]:
    logs = docker_client.volumes.create(
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "uid=10001,gid=10001,mode=0750"}
    )
    state = docker_client.volumes.create()
    main = (
        DockerContainer(pod_images["ECHOSERVER_IMAGE"])
        .with_env("ECHO_LISTEN", "127.0.0.1:8080")
        .with_exposed_ports(ADMIN_PORT)
        .with_volume_mapping(logs.name, LOGS, "rw")
        .with_kwargs(read_only=True)
    )
    main.start()
    try:
        yield Pod(main, logs.name, state.name)
    finally:
        main.stop()
        logs.remove(force=True)
        # Agents started by the test are removed by start_agent's teardown, before this.
        state.remove(force=True)


@pytest.fixture
def start_agent(pod: Pod, pod_images: dict[str, str], docker_client: Any) -> Iterator[StartAgent]:
    """Start an agent in the pod (docker SDK container, ready); removed at the end."""
    started: list[Any] = []

    def start(env: dict[str, str] | None = None, ready: bool = True, **kwargs: Any) -> Any:
        container = docker_client.containers.run(
            pod_images["LOGAGENT_IMAGE"],
            detach=True,
            read_only=True,
            network_mode=f"container:{pod.main.get_container_id()}",
            volumes={
                pod.logs: {"bind": LOGS, "mode": "ro"},
                pod.state: {"bind": STATE, "mode": "rw"},
            },
            environment={"LOGAGENT_PATHS": f"{LOGS}/*.log", **(env or {})},
            **kwargs,
        )
        started.append(container)
        if ready:
            try:
                wait_for(lambda: pod.admin("/readyz")[0] == 200, READY_WITHIN, "logagent: /readyz")
            except BaseException:
                print(container.logs().decode())
                raise
        return container

    yield start
    for container in started:
        container.remove(force=True, v=True)


def test_lines_the_main_container_writes_reach_stdout_each_once(
    pod: Pod, start_agent: StartAgent
) -> None:
    agent = start_agent()
    pod.write(1, 500)
    pod.write(1, 50, "other.log")  # a second file in the glob, picked up as it appears

    wait_for(lambda: len(numbers(agent)) >= 550, ARRIVES_WITHIN, "550 lines on stdout")
    time.sleep(0.5)  # nothing more comes
    got = numbers(agent)
    assert sorted(got) == sorted([*range(1, 501), *range(1, 51)])
    assert [n for n in got if n > 50] == list(range(51, 501))  # app.log's lines in order
    families = metrics.parse(pod.admin("/metrics")[1])
    assert metrics.value(families, "logagent_files_followed") == 2
    sent = metrics.value(families, "logagent_lines_sent_total", output="stdout",
                         file=f"{LOGS}/app.log")
    assert sent == 500


def test_runs_as_uid_10001_on_a_read_only_root(
    pod: Pod, start_agent: StartAgent, docker_client: Any
) -> None:
    agent = start_agent()
    assert_pid1_is(agent, "logagent")
    # The logs are mounted read-only: the agent never writes the application's files.
    probe = agent.exec_run(["touch", f"{LOGS}/probe"])
    assert probe.exit_code != 0 and b"Read-only file system" in probe.output


def test_sigterm_checkpoints_and_the_next_container_resumes_without_duplicates(
    pod: Pod, start_agent: StartAgent
) -> None:
    first = start_agent()
    pod.write(1, 300)
    wait_for(lambda: len(numbers(first)) >= 300, ARRIVES_WITHIN, "300 lines")

    started = time.monotonic()
    first.stop(timeout=10)
    elapsed = time.monotonic() - started
    first.reload()
    assert first.attrs["State"]["ExitCode"] == 0, first.logs().decode()
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"
    assert numbers(first) == list(range(1, 301))

    pod.write(301, 600)  # while no agent runs
    second = start_agent()  # a new container, the same checkpoint volume
    wait_for(lambda: len(numbers(second)) >= 300, ARRIVES_WITHIN, "300 more lines")
    time.sleep(0.5)
    assert numbers(second) == list(range(301, 601))  # none lost, none twice


def test_ships_to_the_rsyslog_image(
    pod: Pod, start_agent: StartAgent, pod_images: dict[str, str], docker_client: Any
) -> None:
    rsyslog = docker_client.containers.run(pod_images["RSYSLOG_IMAGE"], detach=True,
                                           read_only=True)
    try:
        rsyslog.reload()
        address = rsyslog.attrs["NetworkSettings"]["IPAddress"]
        start_agent({"LOGAGENT_OUTPUTS": "syslog", "LOGAGENT_SYSLOG_ADDRESS": f"{address}:5140",
                     "LOGAGENT_HOSTNAME": "app-pod"})
        pod.write(1, 200)
        wait_for(lambda: len(numbers_after_prefix(rsyslog)) >= 200, ARRIVES_WITHIN,
                 "200 lines in rsyslog")
        time.sleep(0.5)
        assert numbers_after_prefix(rsyslog) == list(range(1, 201))
        families = metrics.parse(pod.admin("/metrics")[1])
        assert metrics.value(families, "logagent_output_up", output="syslog") == 1
    finally:
        rsyslog.remove(force=True)


def numbers_after_prefix(rsyslog: Any) -> list[int]:
    """rsyslog prints `HOST APP [SD] MSG`: the numbers of the lines from the pod's app.log."""
    prefix = rb'^app-pod logagent \[logagent@32473 file="/var/log/app/app\.log"\] line (\d+)$'
    return [int(n) for n in re.findall(prefix, rsyslog.logs(stdout=True, stderr=False), re.M)]


def test_image_healthcheck_turns_healthy(pod: Pod, start_agent: StartAgent) -> None:
    agent = start_agent(
        healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3}
    )
    test = agent.attrs["Config"]["Healthcheck"]["Test"]
    assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "logagent"]
    wait_healthy(agent, READY_WITHIN)


def test_bad_option_exits_2_with_one_line(pod_images: dict[str, str], docker_client: Any) -> None:
    container = docker_client.containers.run(
        pod_images["LOGAGENT_IMAGE"],
        detach=True,
        read_only=True,
        environment={"LOGAGENT_PATHS": f"{LOGS}/*.log", "LOGAGENT_POLL_INTERVAL": "often"},
    )
    try:
        result = container.wait(timeout=READY_WITHIN)
        logs = container.logs().decode()
    finally:
        container.remove(force=True, v=True)
    assert result["StatusCode"] == 2, logs
    lines = logs.strip().splitlines()
    assert len(lines) == 1, logs
    assert "LOGAGENT_POLL_INTERVAL" in lines[0] and "often" in lines[0], lines[0]
