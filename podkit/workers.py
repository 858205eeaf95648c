"""Several processes sharing one listening port (SO_REUSEPORT), supervised by the first.

The parent forks the workers, keeps the admin port (health and metrics for the whole set),
restarts a worker that dies, and on SIGTERM passes the signal on and waits for the workers'
drain. Each worker sends its counters up a pipe as a JSON line twice a second.

A worker that dies before its first report died while starting (a port taken, a bad
certificate): it is restarted after a delay that doubles each time, and after GIVE_UP_AFTER
such deaths in a row `supervise` raises WorkerFailure instead of restarting it forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

REPORT_INTERVAL = 0.5
BACKOFF_FIRST = 0.2  # seconds before restarting a worker that died while starting
BACKOFF_MAX = 5.0
GIVE_UP_AFTER = 5  # deaths in a row while starting


class WorkerFailure(Exception):
    """A worker keeps dying before it serves: restarting it again would not help."""


Target = Callable[[int, int], int]  # (worker index, report fd) → exit status; runs in the child


class Workers:
    def __init__(self, count: int, target: Target) -> None:
        self.count = count
        self.target = target
        self.pids: dict[int, int] = {}  # index → pid
        self.reports: dict[int, dict[str, Any]] = {}
        self._buffers: dict[int, bytes] = {}
        self._fds: dict[int, int] = {}
        self._failures: dict[int, int] = {}  # deaths in a row while starting, per worker
        self.stopping = False

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        if self.stopping:
            return  # a restart that was waiting out its back-off
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            status = 1
            try:
                status = self.target(index, write_fd)
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(status)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.pids[index] = pid
        self._fds[index] = read_fd
        self._buffers[index] = b""
        asyncio.get_running_loop().add_reader(read_fd, self._read, index)
        log.info("worker %d started (pid %d)", index, pid)

    def _read(self, index: int) -> None:
        fd = self._fds[index]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            return
        lines = (self._buffers[index] + data).split(b"\n")
        self._buffers[index] = lines.pop()
        if lines:
            try:
                self.reports[index] = json.loads(lines[-1])
            except ValueError:
                log.warning("worker %d sent an unreadable report", index)

    async def supervise(self) -> None:
        """Reap workers; start a new one for any that died while not stopping."""
        while True:
            await asyncio.sleep(0.2)
            for index, pid in list(self.pids.items()):
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - never blocks
                except ChildProcessError:
                    done, status = pid, 0
                if done == 0:
                    continue
                del self.pids[index]
                started = self.reports.pop(index, None) is not None
                if not self.stopping:
                    self._restart(index, pid, os.waitstatus_to_exitcode(status), started)

    def _restart(self, index: int, pid: int, code: int, started: bool) -> None:
        failures = 0 if started else self._failures.get(index, 0) + 1
        self._failures[index] = failures
        if failures >= GIVE_UP_AFTER:
            raise WorkerFailure(
                f"worker {index} exited with status {code} before serving, {failures} times "
                "in a row; giving up (its error is in the log above)"
            )
        delay = min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_MAX) if failures else 0.0
        log.error(
            "worker %d (pid %d) exited with status %d%s; starting another in %.1fs",
            index,
            pid,
            code,
            "" if started else " while starting",
            delay,
        )
        asyncio.get_running_loop().call_later(delay, self._spawn, index)

    def signal_all(self, sig: int) -> None:
        """Pass a signal on (SIGHUP: every worker reloads its configuration)."""
        for pid in self.pids.values():
            os.kill(pid, sig)

    def kill_all(self) -> None:
        """SIGKILL every worker: the second SIGTERM will not wait for their drain."""
        for pid in self.pids.values():
            os.kill(pid, signal.SIGKILL)

    def alive(self) -> bool:
        return len(self.pids) == self.count

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        self.stopping = True
        for pid in self.pids.values():
            os.kill(pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.pids and loop.time() < deadline:
            for index, pid in list(self.pids.items()):
                if os.waitpid(pid, os.WNOHANG)[0]:  # noqa: ASYNC222 - never blocks
                    del self.pids[index]
            await asyncio.sleep(0.05)
        for pid in self.pids.values():
            log.warning("worker pid %d did not stop in %.0fs: killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # noqa: ASYNC222 - SIGKILLed: it is gone at once
        self.pids.clear()


async def report_forever(fd: int, snapshot: Callable[[], dict[str, Any]]) -> None:
    """In a worker: send the counters to the parent until the pipe closes."""
    while True:
        try:
            os.write(fd, json.dumps(snapshot()).encode() + b"\n")
        except BlockingIOError:
            pass  # the parent is slow to read: the next report supersedes this one
        except OSError:
            return
        await asyncio.sleep(REPORT_INTERVAL)
