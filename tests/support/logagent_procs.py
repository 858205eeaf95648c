"""The logagent as a real process, a real rsyslog as its syslog receiver, and the
sequence-numbered lines the delivery tests count (lost: must be none; duplicates: bounded).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import free_port, http_get, stop_process, wait_for

SEQ = re.compile(rb"seq=(\d+)")


# ---- sequence-numbered lines ----------------------------------------------------------------
def seq_line(n: int, pad: int = 60) -> bytes:
    return b"seq=%08d %s\n" % (n, b"x" * pad)


@dataclass
class Tally:
    expected: int
    seen: Counter[int]

    @property
    def lost(self) -> list[int]:
        return [n for n in range(1, self.expected + 1) if n not in self.seen]

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.seen.values() if count > 1)

    def __str__(self) -> str:
        lost = self.lost
        return (
            f"{len(self.seen)} of {self.expected} seen, {len(lost)} lost "
            f"(first: {lost[:10]}), {self.duplicates} duplicates"
        )


def tally(data: bytes, expected: int) -> Tally:
    return Tally(expected, Counter(int(m) for m in SEQ.findall(data)))


def wait_all(read: Callable[[], bytes], expected: int, timeout: float = 30.0) -> Tally:
    """Poll the output until every number up to `expected` arrived (or time is up)."""
    result: list[Tally] = []

    def complete() -> bool:
        result[:] = [tally(read(), expected)]
        return not result[0].lost

    try:
        wait_for(complete, timeout=timeout, what=f"{expected} lines")
    except TimeoutError:
        pass
    return result[0] if result else tally(read(), expected)


class Writer(threading.Thread):
    """Appends numbered lines (O_APPEND, as logrotate's copytruncate requires), calling
    `between(n)` every `every` lines — where a test rotates, truncates or deletes."""

    def __init__(
        self,
        path: Path,
        count: int,
        *,
        every: int = 0,
        between: Callable[[int], None] | None = None,
        rate: float = 0.0,  # lines per second; 0: as fast as it goes
        start: int = 1,
        batch: int = 100,
    ) -> None:
        super().__init__(daemon=True)
        self.path, self.count, self.every, self.between = path, count, every, between
        self.rate, self.first, self.batch = rate, start, batch
        self.lock = threading.Lock()  # held while writing: a test may pause the writer
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        began = time.monotonic()
        n, last = self.first, self.first + self.count - 1
        boundary = self.first + self.every if self.every else 0  # the next `between`
        while n <= last:
            upto = min(n + self.batch - 1, last, boundary - 1 if boundary else last)
            with self.lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"".join(seq_line(i) for i in range(n, upto + 1)))
                finally:
                    os.close(fd)
            n = upto + 1
            if boundary and n == boundary and n <= last:
                if self.between is not None:
                    self.between(n)
                boundary += self.every
            if self.rate:
                ahead = (n - self.first) / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def finish(self, timeout: float = 60) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the writer did not finish"
        if self.error is not None:
            raise self.error


# ---- the agent ------------------------------------------------------------------------------
@dataclass
class Agent:
    workdir: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "agent.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "agent.stderr"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "logagent",
            "--state-dir", str(self.state_dir),
            "--admin-address", f"127.0.0.1:{self.port}",
            "--poll-interval", "50ms",
            "--scan-interval", "100ms",
            "--rotate-wait", "1s",
            *self.args,
        ]

    def start(self, wait: bool = True) -> Agent:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        # O_APPEND: after a kill -9 the next run appends to what the first one wrote.
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=err, env=env)
        if wait:
            wait_for(self._ready, timeout=20, what="logagent /readyz")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"logagent exited {self.proc.returncode}: {self.stderr()[-3000:]}")
        return http_get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)[0] == 200

    def stdout(self) -> bytes:
        return self.stdout_path.read_bytes() if self.stdout_path.exists() else b""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        status, body = http_get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)
        assert status == 200
        values: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, prefix: str) -> float:
        """The sum of every series whose name and labels start with `prefix`."""
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        return stop_process(self.proc, sig, timeout)


# ---- rsyslog as the receiver ----------------------------------------------------------------
@dataclass
class Rsyslog:
    """rsyslogd in the foreground, unprivileged, imtcp on a loopback port, every message's
    MSG part written as one line to `received` (TLS with the gtls driver when certs given)."""

    binary: str
    workdir: Path
    port: int = field(default_factory=free_port)
    tls: tuple[Path, Path, Path] | None = None  # (ca, cert, key)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def received(self) -> Path:
        return self.workdir / "received.log"

    def config(self) -> str:
        tls_global = tls_module = ""
        if self.tls is not None:
            ca, cert, key = self.tls
            tls_global = (
                f' defaultNetstreamDriverCAFile="{ca}" defaultNetstreamDriverCertFile="{cert}"'
                f' defaultNetstreamDriverKeyFile="{key}"'
            )
            tls_module = ' streamDriver.name="gtls" streamDriver.mode="1"'
            tls_module += ' streamDriver.authMode="anon"'
        return f"""
global(workDirectory="{self.workdir}" maxMessageSize="2m"{tls_global})
module(load="imtcp"{tls_module})
template(name="msgonly" type="string" string="%msg%\\n")
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="out")
ruleset(name="out") {{
  action(type="omfile" file="{self.received}" template="msgonly")
}}
"""

    def start(self) -> Rsyslog:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(self.config())
        pidfile = self.workdir / "rsyslog.pid"
        pidfile.unlink(missing_ok=True)
        with open(self.workdir / "rsyslog.out", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-n", "-f", str(conf), "-i", str(pidfile)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._listening, timeout=15, what=f"rsyslogd on port {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = (self.workdir / "rsyslog.out").read_text(errors="replace")
            raise RuntimeError(f"rsyslogd exited {self.proc.returncode}: {out[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def read(self) -> bytes:
        return self.received.read_bytes() if self.received.exists() else b""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rsyslogd_binary() -> str | None:
    return shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
    )
