"""Checks every service image has to pass, for the container tier."""

from __future__ import annotations

from typing import Any

from support.processes import wait_for

UID = "10001"


def assert_pid1_is(container: Any, module: str) -> None:
    """PID 1 is `python3 -m MODULE` (exec-form ENTRYPOINT) as the image's numeric user, on a
    root file system that even root cannot write to."""
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
    for field in ("Uid:", "Gid:"):
        line = next(line for line in status.splitlines() if line.startswith(field))
        assert line.split()[1:] == [UID] * 4, line
    cmdline = container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert cmdline[:3] == [b"python3", b"-m", module.encode()]
    probe = container.exec_run(["touch", "/app/probe"], user="0")
    assert probe.exit_code != 0 and b"Read-only file system" in probe.output


def wait_healthy(container: Any, within: float) -> None:
    """Until the image's own HEALTHCHECK says healthy (failing at once on unhealthy)."""

    def healthy() -> bool:
        container.reload()
        state: str = container.attrs["State"]["Health"]["Status"]
        assert state != "unhealthy", container.attrs["State"]["Health"]["Log"]
        return state == "healthy"

    wait_for(healthy, within, "docker health status healthy")
