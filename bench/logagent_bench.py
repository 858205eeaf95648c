"""Side by side: the logagent vs rsyslog's imfile, both reading the same file and forwarding it
as RFC 5424 over TCP (octet-counted) into the same receiver.

Each round writes a fresh file of --lines sequence-numbered lines, starts one tool on it with
fresh state, and times from the tool's start until the receiver has every line. Reported per
tool: the median over --rounds (≥ 7) of lines/s and CPU per line (user + system of the tool's
process), and its peak RSS. The logagent runs as users get it: the package as `pip install .`
installs it, on Debian's /usr/bin/python3 (the images' interpreter), from
bench/interpreter.py's venv. Aims: the logagent at ≥ 0.5x rsyslog's lines/s, ≤ 40 MB RSS.

    .venv/bin/python bench/logagent_bench.py [--lines 500000] [--rounds 7]

Not run in CI: timings on a shared 2-core machine say little; the shape of the numbers does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from interpreter import bench_python

MARK = b"seq="  # once per line: the receiver counts these, whatever the framing
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Receiver(threading.Thread):
    """A TCP server that counts MARKs in everything it receives (bytes.count: C speed)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.count = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        tail = b""
        with conn:
            while data := conn.recv(1 << 20):
                joined = tail + data
                n = joined.count(MARK)
                tail = joined[-(len(MARK) - 1) :]
                n -= tail.count(MARK)  # never: the tail is shorter than MARK
                with self.lock:
                    self.count += n

    def reset(self) -> None:
        with self.lock:
            self.count = 0


@dataclass
class Result:
    seconds: float
    cpu: float
    rss_kb: int


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def write_file(path: Path, lines: int) -> None:
    with open(path, "wb") as f:
        block = 10_000
        for start in range(1, lines + 1, block):
            end = min(start + block, lines + 1)
            f.write(b"".join(b"seq=%09d %s\n" % (i, b"p" * 80) for i in range(start, end)))


def rsyslog_conf(work: Path, log: Path, port: int) -> Path:
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imfile")
input(type="imfile" file="{log}" tag="bench:" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
""")
    return conf


def command(tool: str, work: Path, log: Path, port: int, python: str) -> list[str]:
    if tool == "rsyslog":
        rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        conf = rsyslog_conf(work, log, port)
        return [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "pid")]
    return [
        python, "-m", "logagent", "--path", str(log), "--state-dir", str(work / "state"),
        "--output", "syslog", "--syslog-address", f"127.0.0.1:{port}",
        "--admin-address", f"127.0.0.1:{free_port()}",
        "--log-level", "warning",
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_round(tool: str, receiver: Receiver, lines: int, base: Path, python: str) -> Result:
    work = Path(tempfile.mkdtemp(dir=base, prefix=f"{tool}-"))
    log = work / "app.log"
    write_file(log, lines)
    receiver.reset()
    began = time.monotonic()
    proc = subprocess.Popen(command(tool, work, log, receiver.port, python),
                            stdout=subprocess.DEVNULL, stderr=open(work / "stderr", "wb"),
                            env={**os.environ, "PYTHONSAFEPATH": "1"})  # never the source tree
    try:
        deadline = began + 300
        while receiver.count < lines:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{tool} stopped at {receiver.count} of {lines} lines: "
                                   + (work / "stderr").read_text()[-2000:])
            time.sleep(0.002)
        seconds = time.monotonic() - began
        cpu, rss = proc_cpu(proc.pid), proc_peak_rss_kb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(work, ignore_errors=True)
    return Result(seconds, cpu, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--python", help="interpreter for the logagent (default: .venv-bench)")
    args = parser.parse_args()
    python = args.python or bench_python()
    if args.rounds < 7:
        parser.error("--rounds: at least 7 (the median of fewer says little)")
    receiver = Receiver()
    receiver.start()
    results: dict[str, list[Result]] = {"rsyslog": [], "logagent": []}
    with tempfile.TemporaryDirectory(prefix="logagent-bench-") as base:
        for n in range(args.rounds):
            for tool in results:  # alternate, so drift in the machine hits both alike
                result = one_round(tool, receiver, args.lines, Path(base), python)
                results[tool].append(result)
                print(f"round {n + 1} {tool:8s} {args.lines / result.seconds:>10,.0f} lines/s "
                      f"{result.cpu / args.lines * 1e6:6.2f} µs CPU/line "
                      f"{result.rss_kb / 1024:6.1f} MB", file=sys.stderr)
    print(f"\n{args.lines:,} lines of {len(b'seq=000000001 ') + 81} bytes, median of "
          f"{args.rounds} rounds (from the tool's start to the last line received)\n")
    print(f"{'tool':10s} {'lines/s':>12s} {'CPU µs/line':>12s} {'peak RSS MB':>12s}")
    medians: dict[str, float] = {}
    for tool, runs in results.items():
        rate = statistics.median(args.lines / r.seconds for r in runs)
        cpu = statistics.median(r.cpu / args.lines * 1e6 for r in runs)
        rss = statistics.median(r.rss_kb / 1024 for r in runs)
        medians[tool] = rate
        print(f"{tool:10s} {rate:>12,.0f} {cpu:>12.2f} {rss:>12.1f}")
    # Rounds alternate the two tools, so each round's ratio compares them under the same
    # load on the machine; their median is the figure to quote.
    ratio = statistics.median(
        theirs.seconds / mine.seconds  # lines/s ratio: the same lines in each
        for mine, theirs in zip(results["logagent"], results["rsyslog"], strict=True)
    )
    print(
        f"\nlogagent / rsyslog lines/s: {ratio:.2f}x, the median of per-round ratios "
        f"(ratio of the medians: {medians['logagent'] / medians['rsyslog']:.2f}x; aim ≥ 0.5x); "
        "RSS aim ≤ 40 MB"
    )


if __name__ == "__main__":
    main()
