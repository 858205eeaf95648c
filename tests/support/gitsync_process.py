"""gitsync as the tests run it: a real `python -m gitsync` process with its log, admin port
and metrics, started against the servers of gitsync_servers.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from support.gitsync_servers import HttpGitServer, SshGitServer
from support.processes import free_port, http_get, stop_process, wait_for


@dataclass
class GitSync:
    args: list[str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable  # the bench passes the installed package's interpreter

    def start(self) -> GitSync:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "gitsync", "--http-bind", f"127.0.0.1:{self.port}",
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        wait_for(self._admin_answers, what="gitsync's admin port")
        return self

    def _admin_answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"gitsync exited {self.proc.returncode}: {self.log()[-3000:]}")
        return http_get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)[0] == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)[1]

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
        match = re.search(r"^" + pattern + "$", self.metrics(), re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    def ready(self) -> int:
        return http_get(f"http://127.0.0.1:{self.port}/readyz", timeout=5)[0]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        return stop_process(self.proc, sig, timeout)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)


StartGitSync = Callable[..., GitSync]  # the `gitsync` fixture: gitsync(*args, name=..., env=...)


def gitsync_oneshot(
    args: list[str], timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gitsync ...` run to its end (--one-time, bad options), output captured."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gitsync", "--http-bind", "", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def http_push_args(server: HttpGitServer, password_file: Path, tmp_path: Path,
                   *extra: str, repo: str = "repo.git") -> list[str]:
    return [
        "--mode", "push", "--repo", server.url(repo), "--root", str(tmp_path / "state"),
        "--push-dir", str(tmp_path / "work"), "--username", server.user,
        "--password-file", str(password_file), "--debounce", "200ms", "--period", "1s",
        *extra,
    ]


def http_pull_args(server: HttpGitServer, password_file: Path, tmp_path: Path,
                   *extra: str, repo: str = "repo.git") -> list[str]:
    return [
        "--repo", server.url(repo), "--root", str(tmp_path / "pulled"), "--link", "current",
        "--username", server.user, "--password-file", str(password_file), "--period", "200ms",
        *extra,
    ]


def ssh_args(server: SshGitServer) -> list[str]:
    return ["--ssh-key-file", str(server.client_key),
            "--ssh-known-hosts-file", str(server.known_hosts)]
