"""The logagent pod of docker-compose.yml, up for real: `counter` (the main container, writing
a numbered line a second to /var/log/app/1.log and 2.log in a shared volume, as the
Kubernetes logging documentation's example does), `logagent` beside it streaming both files
to its stdout and shipping them to `rsyslog`.

Every counter line arrives once and in order, at both outputs, also across a restart of the
agent (SIGTERM, checkpoint, start again).
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator

import pytest
from support import images, metrics
from support.compose import Project, project_up
from support.processes import http_get, wait_for

pytestmark = pytest.mark.timeout(600)

SERVICES = ("counter", "logagent", "rsyslog")
ARRIVES_WITHIN = 20.0  # the agent polls every 250 ms; room for a slow, shared machine
# 1.log's lines: "<n>: <date>"; as rsyslog prints them, after the file's structured data.
STDOUT_LINE = re.compile(r"^(\d+): ", re.M)
RSYSLOG_LINE = re.compile(r'^counter logagent \[logagent@32473 file="/var/log/app/1\.log"\] '
                          r"(\d+): ", re.M)


class LogPod(Project):
    def logs(self, service: str) -> str:
        """The service's stdout, through `docker logs`: compose's own `logs` mixes in stderr
        and terminal escapes."""
        done = subprocess.run(["docker", "logs", self.inspect(service)["Id"]],
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def numbers(self, service: str) -> list[int]:
        """The sequence numbers of 1.log's lines as the service printed them, in order."""
        pattern = STDOUT_LINE if service == "logagent" else RSYSLOG_LINE
        return [int(n) for n in pattern.findall(self.logs(service))]

    def write(self, line: str) -> None:
        done = self.compose("exec", "-T", "counter", "sh", "-c",
                            'echo "$1" >> /var/log/app/1.log', "sh", line)
        assert done.returncode == 0, done.stderr


def assert_each_once_in_order(numbers: list[int], what: str) -> None:
    """Lines 0..n, none lost, none twice: the agent read the file from its start."""
    assert numbers, f"{what}: no counter line"
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), f"{what}: {numbers}"
    assert numbers[0] == 0, f"{what}: starts at {numbers[0]}"


@pytest.fixture(scope="module")
def logagent_images(demo_images: dict[str, str]) -> dict[str, str]:
    """demo_images checks for Compose v2 (and builds the adapter pod's images)."""
    return images.build("logagent", "rsyslog", "echoserver")


@pytest.fixture(scope="module")
def pod(logagent_images: dict[str, str]) -> Iterator[LogPod]:
    with project_up(LogPod, "logagent", logagent_images, ["LOGAGENT_ADMIN_HOST_PORT"],
                    SERVICES) as pod:
        yield pod


def test_a_line_written_reaches_stdout_and_rsyslog(pod: LogPod) -> None:
    marker = f"e2e marker {secrets.token_hex(8)}"
    pod.write(marker)

    wait_for(lambda: marker in pod.logs("logagent"), ARRIVES_WITHIN, "the marker on stdout")
    expected = f'counter logagent [logagent@32473 file="/var/log/app/1.log"] {marker}'
    wait_for(lambda: expected in pod.logs("rsyslog"), ARRIVES_WITHIN, "the marker in rsyslog")
    # The agent's stdout holds the lines as written, nothing else (its own log is stderr).
    assert pod.logs("logagent").count(marker) == 1


def test_both_files_each_line_once_in_order(pod: LogPod) -> None:
    wait_for(lambda: len(pod.numbers("rsyslog")) >= 5, ARRIVES_WITHIN, "five counter lines")
    for service in ("logagent", "rsyslog"):
        assert_each_once_in_order(pod.numbers(service), service)
    # 2.log too ("<date> INFO <n>").
    second = [int(n) for n in re.findall(r" INFO (\d+)$", pod.logs("logagent"), re.M)]
    assert second[:5] == [0, 1, 2, 3, 4], second


def test_the_pod_is_wired_and_its_outputs_up(pod: LogPod) -> None:
    counter, agent, rsyslog = (pod.inspect(service) for service in SERVICES)
    assert agent["HostConfig"]["NetworkMode"] == f"container:{counter['Id']}"
    for container in (counter, agent, rsyslog):
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["Config"]["User"] == "10001:10001"
        assert container["State"]["Health"]["Status"] == "healthy"
    status, text = http_get(pod.url("LOGAGENT_ADMIN_HOST_PORT", "/metrics"), 5)
    assert status == 200
    families = metrics.parse(text)
    for output in ("stdout", "syslog"):
        assert metrics.value(families, "logagent_output_up", output=output) == 1
        sent = metrics.value(families, "logagent_lines_sent_total", output=output,
                             file="/var/log/app/2.log")
        assert sent >= 1, output
    assert metrics.value(families, "logagent_files_followed") == 2


def test_a_restart_of_the_agent_neither_loses_nor_repeats_a_line(pod: LogPod) -> None:
    before = pod.numbers("logagent")[-1]
    restart = pod.compose("restart", "--timeout", "15", "logagent", timeout=60)
    assert restart.returncode == 0, restart.stderr
    agent = pod.inspect("logagent")
    assert agent["State"]["Running"] and agent["RestartCount"] == 0  # restarted by us, not died
    # The counter wrote on while the agent was down; those lines come after the restart.
    for service in ("logagent", "rsyslog"):
        wait_for(lambda s=service: pod.numbers(s)[-1] >= before + 5, ARRIVES_WITHIN,
                 f"{service}: lines written across the restart")
        assert_each_once_in_order(pod.numbers(service), service)
