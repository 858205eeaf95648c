"""The adapter image as it ships, run beside Redis the way a pod runs its containers.

The adapter joins the network namespace of the Redis container (`network_mode=container:`),
as containers of one Kubernetes pod share localhost, and reaches Redis at localhost:6379.
Ports of a pod are published by the container that owns its namespace.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import metrics
from support.containers import assert_pid1_is
from testcontainers.core.container import DockerContainer

# The first test also builds the images (minutes on a fresh machine, seconds when cached);
# every wait below has its own, much shorter bound.
pytestmark = pytest.mark.timeout(600)

ADAPTER_PORT = 9121
REDIS_COMMAND = ["redis-server", "--save", "", "--appendonly", "no"]
# Bounds of the waits: generous for a loaded 2-core CI machine, far below the test timeout.
READY_WITHIN = 30.0
STOP_WITHIN = 5.0  # a graceful drain, well under docker stop's 10 s before SIGKILL


@dataclass
class Pod:
    redis: DockerContainer
    adapter: DockerContainer
    port: int  # the adapter's port, published on a free host port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def redis_cli(self, *args: str) -> str:
        result = self.redis.exec(["redis-cli", *args])
        assert result.exit_code == 0, result.output
        return result.output.decode().strip()


def wait_until(what: str, check: Callable[[], Any], within: float = READY_WITHIN) -> Any:
    """Poll `check` until it returns a truthy value (returned) or `within` seconds pass."""
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, AssertionError) as exc:  # not up yet: refused, reset, 5xx, ...
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {within:.0f}s (last: {last!r})")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(pod: Pod) -> dict[str, metrics.Family]:
    status, body = get(pod.url("/metrics"))
    assert status == 200, body
    return metrics.parse(body)


def start_redis(
    image: str, *, publish: bool = False, network_mode: str | None = None
) -> DockerContainer:
    """Redis; with `publish`, it owns the pod's namespace and publishes the adapter's port."""
    redis = DockerContainer(image).with_command(REDIS_COMMAND)
    if publish:
        redis.with_exposed_ports(ADAPTER_PORT)
    if network_mode:
        redis.with_kwargs(network_mode=network_mode)
    redis.start()
    try:
        wait_until(
            "redis-cli ping", lambda: redis.exec(["redis-cli", "ping"]).output.strip() == b"PONG"
        )
    except BaseException:
        redis.stop()
        raise
    return redis


def start_adapter(
    image: str, namespace_owner: DockerContainer, port: int, **kwargs: Any
) -> DockerContainer:
    adapter = (
        DockerContainer(image)
        .with_env("REDIS_ADDR", "redis://localhost:6379")
        .with_kwargs(
            network_mode=f"container:{namespace_owner.get_container_id()}", read_only=True, **kwargs
        )
    )
    adapter.start()
    try:
        wait_until("GET /healthz", lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200)
    except BaseException:
        print(adapter.get_logs())
        adapter.stop()
        raise
    return adapter


def published_port(container: DockerContainer) -> int:
    return int(container.get_exposed_port(ADAPTER_PORT))


@pytest.fixture
def pod(pod_images: dict[str, str]) -> Iterator[Pod]:
    """Redis, with the adapter in its network namespace; the adapter's port published."""
    redis = start_redis(pod_images["REDIS_IMAGE"], publish=True)
    try:
        port = published_port(redis)
        adapter = start_adapter(pod_images["ADAPTER_IMAGE"], redis, port)
        try:
            yield Pod(redis, adapter, port)
        finally:
            adapter.stop()
    finally:
        redis.stop()


def test_metrics_of_the_pods_redis(pod: Pod) -> None:
    keys = [f"key:{i}" for i in range(7)]
    pod.redis_cli("MSET", *(part for key in keys for part in (key, "v")))
    assert pod.redis_cli("DBSIZE") == str(len(keys))

    families = scrape(pod)

    assert metrics.value(families, "redis_up") == 1
    assert metrics.value(families, "redis_db_keys", db="db0") == len(keys)


def test_runs_as_uid_10001_on_a_read_only_root(pod: Pod, docker_client: Any) -> None:
    container = docker_client.containers.get(pod.adapter.get_container_id())
    assert_pid1_is(container, "adapter")

    # ... and the adapter works all the same.
    assert metrics.value(scrape(pod), "redis_up") == 1


def test_sigterm_drains_and_exits_0(pod: Pod, docker_client: Any) -> None:
    container = docker_client.containers.get(pod.adapter.get_container_id())

    started = time.monotonic()
    container.stop(timeout=10)  # SIGTERM; SIGKILL only after 10 s
    elapsed = time.monotonic() - started

    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode()
    assert not container.attrs["State"]["OOMKilled"]
    assert elapsed < STOP_WITHIN, f"docker stop took {elapsed:.1f}s"


def test_image_healthcheck_turns_healthy(pod_images: dict[str, str], docker_client: Any) -> None:
    """The image's own HEALTHCHECK (podkit.healthcheck against /healthz), probed every second."""
    redis = start_redis(pod_images["REDIS_IMAGE"], publish=True)
    try:
        # No "test" key: the daemon keeps the image's command and takes only the timing.
        adapter = start_adapter(
            pod_images["ADAPTER_IMAGE"],
            redis,
            published_port(redis),
            healthcheck={"interval": 1_000_000_000, "timeout": 3_000_000_000, "retries": 3},
        )
        try:
            container = docker_client.containers.get(adapter.get_container_id())
            test = container.attrs["Config"]["Healthcheck"]["Test"]
            assert test == ["CMD", "python3", "-m", "podkit.healthcheck", "adapter"]

            def health() -> bool:
                container.reload()
                status: str = container.attrs["State"]["Health"]["Status"]
                assert status != "unhealthy", container.attrs["State"]["Health"]["Log"]
                return status == "healthy"

            wait_until("docker health status healthy", health)
        finally:
            adapter.stop()
    finally:
        redis.stop()


def test_redis_stopped_gives_redis_up_0(pod_images: dict[str, str]) -> None:
    """Redis goes away, the adapter stays: it answers 200 with redis_up 0.

    Stopping the container that owns the namespace would take the adapter's network with it,
    so here a third container holds the namespace, as the pause container does in
    Kubernetes, and Redis and the adapter both join it.
    """
    holder = (
        DockerContainer(pod_images["REDIS_IMAGE"])
        .with_exposed_ports(ADAPTER_PORT)
        .with_kwargs(entrypoint=["sleep", "infinity"])
    )
    holder.start()
    try:
        port = published_port(holder)
        redis = start_redis(
            pod_images["REDIS_IMAGE"], network_mode=f"container:{holder.get_container_id()}"
        )
        try:
            adapter = start_adapter(pod_images["ADAPTER_IMAGE"], holder, port)
            try:
                pod = Pod(redis, adapter, port)
                assert metrics.value(scrape(pod), "redis_up") == 1

                redis.get_wrapped_container().stop(timeout=10)

                wait_until("redis_up 0", lambda: metrics.value(scrape(pod), "redis_up") == 0)
                assert get(pod.url("/healthz"))[0] == 200
            finally:
                adapter.stop()
        finally:
            redis.stop()
    finally:
        holder.stop()
