"""Real processes for the integration tier: redis-server, the adapter, redis_exporter.

Each is started on a free loopback port, waited for, and stopped by the fixture that made it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> int:
    """Signal `proc` and wait for its exit status; killed (and the timeout raised) if it
    outlives `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, timeout: float = 15.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}: {last!r}")


def http_get(
    url: str, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def served_by(port: int, requests: int) -> Counter[str]:
    """Which server answered each of `requests` GETs to 127.0.0.1:port on one kept connection
    (the echoserver names itself in X-Echo-Server); every answer must be a 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    served: Counter[str] = Counter()
    try:
        for _ in range(requests):
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            served[response.getheader("X-Echo-Server") or "?"] += 1
    finally:
        connection.close()
    return served


@dataclass
class RedisServer:
    """A redis-server on 127.0.0.1:port, its data in `workdir`."""

    workdir: Path
    port: int = field(default_factory=free_port)
    args: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None
    password: str | None = None

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--enable-debug-command",
                    "local",
                    "--latency-tracking",
                    "yes",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError((self.workdir / "redis.log").read_text()[-2000:])
        try:
            return bool(self.client().ping())
        except redis.AuthenticationError:
            return True
        except redis.ResponseError as exc:
            return "NOAUTH" in str(exc)

    def client(self, db: int = 0, **kwargs: object) -> redis.Redis:
        if self.password and "password" not in kwargs:
            kwargs["password"] = self.password
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Service:
    """A long-running HTTP process (the adapter or redis_exporter) with its log."""

    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/metrics") -> Service:
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(self._answers(ready_path), what=" ".join(self.argv[:3]))
        return self

    def check_build(self, prefix: str) -> None:
        """Under POD_PATTERNS_EXPECT_BUILD (the compiled run of `make test`), the process
        must run the build it names, as its `<prefix>_build_info` says."""
        expected = os.environ.get("POD_PATTERNS_EXPECT_BUILD")
        if not expected:
            return
        _, text = self.get("/metrics")
        compiled = "true" if expected == "compiled" else "false"
        assert (
            f'compiled="{compiled}"' in text.split(f"{prefix}_build_info{{", 1)[-1].split("}", 1)[0]
        ), f"{self.argv[:3]} does not run the {expected} build"

    def _answers(self, path: str):  # type: ignore[no-untyped-def]
        def check() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: {self.log()[-2000:]}")
            return http_get(self.base + path, timeout=2)[0] == 200

        return check

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/metrics", **kwargs: object) -> tuple[int, str]:
        return http_get(self.base + path, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.proc is not None
        return stop_process(self.proc, sig, timeout)


def adapter(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, name: str = "adapter"
) -> Service:
    port = free_port()
    return Service(
        [sys.executable, "-m", "adapter", "--web-listen-address", f"127.0.0.1:{port}", *args],
        port,
        tmp_path / f"{name}.log",
        env=env,
    )


def redis_exporter(tmp_path: Path, *args: str) -> Service:
    port = free_port()
    return Service(
        ["prometheus-redis-exporter", "-web.listen-address", f"127.0.0.1:{port}", *args],
        port,
        tmp_path / "redis_exporter.log",
    )
