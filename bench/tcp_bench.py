"""The ambassador's tcp mode against nginx's stream module (and HAProxy's `mode tcp`), side by
side before one nginx backend on this machine.

Two workloads, each through every proxy in turn, the order rotated from round to round:

- connections: `wrk -t1 -c16 -H "Connection: close"`: each request a new TCP connection
  through the proxy (connect, a small request, its small response, close): connections/s.
- bytes: one connection reading a long response (a 4 GiB sparse file the backend sends
  with sendfile) for the run's duration: bytes/s through the proxy, one stream.

Every proxy runs one worker/thread, passes bytes as they are, and is started once. Reported
per proxy: the median over the rounds, and against nginx the median of the per-round ratios,
with nginx's own figure beside it (ratios move with the CPU; the anchor says how fast the
machine was). Our ambassador runs with its active checks off (the peers have none either).

    python bench/tcp_bench.py [--rounds 7] [--duration 5] [--only nginx,haproxy,compiled,pure]
                              [--python PYTHON] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interpreter import BUILDS, bench_python
from proxy_bench import (
    HAPROXY,
    NGINX,
    WRK,
    Proc,
    free_port,
    nginx_conf,
    nginx_proc,
    parse_wrk,
    version_of,
)

PROXIES = ("nginx", "haproxy", *BUILDS)
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"  # Debian: libnginx-mod-stream
BIG = 64 << 30  # the long response (a sparse file): never read to its end within a run
CHUNK = 1 << 20


# --- processes -------------------------------------------------------------------------------


def backend(tmp: Path, port: int) -> Proc:
    """nginx answering `ok\\n` on / and sending a sparse 64 GiB file on /big (sendfile)."""
    big = tmp / "www" / "big"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(BIG)
    block = f"""    sendfile on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = / {{ return 200 "ok\\n"; }}
        location = /big {{ root {tmp}/www; }}
    }}"""
    return nginx_proc(tmp, "backend", nginx_conf(tmp, "backend", block))


def nginx_stream(tmp: Path, port: int, upstream: int) -> Proc:
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""load_module {STREAM_MODULE};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.error.log warn;
events {{ worker_connections 4096; }}
stream {{
    upstream b {{ server 127.0.0.1:{upstream}; }}
    server {{ listen 127.0.0.1:{port} backlog=4096; proxy_pass b; }}
}}
"""
    )
    return Proc("nginx", [NGINX, "-p", f"{tmp}/", "-c", str(conf)], tmp / "nginx.log")


def haproxy_tcp(tmp: Path, port: int, upstream: int) -> Proc:
    conf = tmp / "haproxy.cfg"
    conf.write_text(
        f"""global
    nbthread 1
    maxconn 8192

defaults
    mode tcp
    maxconn 8192
    timeout connect 5s
    timeout client 75s
    timeout server 75s

listen tcp
    bind 127.0.0.1:{port}
    server b1 127.0.0.1:{upstream}
"""
    )
    return Proc("haproxy", [HAPROXY, "-db", "-f", str(conf)], tmp / "haproxy.log")


def ambassador_tcp(tmp: Path, port: int, upstream: int, python: str, name: str) -> Proc:
    argv = [python, "-m", "ambassador", "--mode", "tcp", "--listen", f"127.0.0.1:{port}"]
    argv += ["--upstream", f"127.0.0.1:{upstream}", "--health-interval", "0"]
    argv += ["--admin-listen", f"127.0.0.1:{free_port()}"]
    env = {"PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1"}
    return Proc(name, argv, tmp / f"{name}.log", env=env)


def get(port: int, path: str, limit: int = 1 << 16) -> bytes:
    """One HTTP/1.0 GET through the proxy on a new connection; what came back (capped)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        data = b""
        while len(data) < limit and (chunk := s.recv(65536)):
            data += chunk
    return data


def launch(stack: ExitStack, proc: Proc, port: int, timeout: float = 20.0) -> Proc:
    proc.start()
    stack.callback(proc.stop)
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        try:
            if get(port, "/").endswith(b"\r\n\r\nok\n"):
                return proc
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not answer on :{port}: {exc!r}") from exc
        time.sleep(0.05)


# --- workloads -------------------------------------------------------------------------------


def stream_rate(port: int, seconds: float) -> float:
    """Bytes/s of one connection reading the long response for `seconds`."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.sendall(b"GET /big HTTP/1.0\r\nHost: bench\r\n\r\n")
        s.recv_into(view)  # the head and the first bytes: the stream is flowing
        total, started = 0, time.perf_counter()
        end = started + seconds
        while (now := time.perf_counter()) < end:
            n = s.recv_into(view)
            if not n:
                raise RuntimeError("the long response ended early")
            total += n
    return total / (now - started)


@dataclass
class Run:
    round: int
    proxy: str
    conns_per_s: float
    bytes_per_s: float
    errors: dict[str, int]


def per_round_ratios(runs: list[Run], proxy: str, key: str) -> list[float]:
    by_round: dict[int, dict[str, Run]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.proxy] = r
    out = []
    for rounds in by_round.values():
        ours, anchor = rounds.get(proxy), rounds.get("nginx")
        if ours and anchor and getattr(anchor, key):
            out.append(getattr(ours, key) / getattr(anchor, key))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=16, help="wrk's, for connections/s")
    parser.add_argument("--only", default=",".join(PROXIES), help="comma list of proxies")
    parser.add_argument("--python", help="one interpreter for both builds")
    parser.add_argument("--json", type=Path, help="write the raw per-round numbers here")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    if not chosen or set(chosen) - set(PROXIES) or "nginx" not in chosen:
        parser.error(f"--only takes a comma list of {', '.join(PROXIES)}, nginx among them")
    chosen = [p for p in PROXIES if p in chosen]
    for tool in (NGINX, WRK, STREAM_MODULE, *([HAPROXY] if "haproxy" in chosen else [])):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is missing: run scripts/bootstrap-host.sh")
    pythons = {build: args.python or bench_python(build) for build in BUILDS if build in chosen}

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="tcp-bench-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        upstream = free_port()
        launch(stack, backend(tmp, upstream), upstream)
        ports = {name: free_port() for name in chosen}
        for name in chosen:
            if name in pythons:
                proc = ambassador_tcp(tmp, ports[name], upstream, pythons[name], name)
            elif name == "nginx":
                proc = nginx_stream(tmp, ports[name], upstream)
            else:
                proc = haproxy_tcp(tmp, ports[name], upstream)
            launch(stack, proc, ports[name])
        versions = [version_of([NGINX, "-v"]), version_of([WRK, "-v"])]
        if "haproxy" in chosen:
            versions.append(version_of([HAPROXY, "-v"]))
        versions += [f"{n}: " + version_of([p, "-VV"]) for n, p in pythons.items()]
        print(f"tcp on {os.cpu_count()} CPUs; " + "; ".join(versions))
        for name in chosen:  # every proxy passes the bytes as they are
            head = get(ports[name], "/big", limit=1 << 20)
            assert head.startswith(b"HTTP/1.1 200") and len(head) >= 1 << 20, name
        for rnd in range(args.rounds):
            order = chosen[rnd % len(chosen) :] + chosen[: rnd % len(chosen)]
            line = []
            for name in order:
                url = f"http://127.0.0.1:{ports[name]}/"
                wrk_close(url, args.connections, 1)  # warm-up
                conns, _, _, errors = parse_wrk(wrk_close(url, args.connections, args.duration))
                rate = stream_rate(ports[name], args.duration)
                runs.append(Run(rnd + 1, name, conns, rate, errors))
                flag = f" ERRORS {errors}" if errors else ""
                line.append(f"{name} {conns:.0f} conn/s {rate / 1e6:.0f} MB/s{flag}")
            print(f"round {rnd + 1}/{args.rounds}: " + " | ".join(line), file=sys.stderr)

    print(
        f"\nconnections: wrk -t1 -c{args.connections} -d{args.duration}s, Connection: close "
        f"(a new TCP connection per request); bytes: one connection, {args.duration}s of a "
        f"sendfile'd response; {args.rounds} rounds, order rotated; medians over rounds, "
        "ratios = median of per-round ratios\n"
    )
    print("| proxy | connections/s | vs nginx | MB/s (one stream) | vs nginx |")
    print("|---|---:|---:|---:|---:|")
    for name in chosen:
        mine = [r for r in runs if r.proxy == name]
        conns = statistics.median(r.conns_per_s for r in mine)
        rate = statistics.median(r.bytes_per_s for r in mine) / 1e6
        if name == "nginx":
            print(f"| nginx stream (anchor) | {conns:,.0f} | — | {rate:,.0f} | — |")
            continue
        c = per_round_ratios(runs, name, "conns_per_s")
        b = per_round_ratios(runs, name, "bytes_per_s")
        label = f"ambassador --mode tcp, {name}" if name in pythons else "HAProxy mode tcp"
        print(
            f"| {label} | {conns:,.0f} | {statistics.median(c):.2f} x | {rate:,.0f} | "
            f"{statistics.median(b):.2f} x |"
        )
    for name in chosen:
        if name == "nginx":
            continue
        c = per_round_ratios(runs, name, "conns_per_s")
        b = per_round_ratios(runs, name, "bytes_per_s")
        print(
            f"{name} per round vs nginx: connections "
            + " ".join(f"{x:.2f}" for x in c)
            + "; bytes "
            + " ".join(f"{x:.2f}" for x in b)
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))


def wrk_close(url: str, connections: int, duration: int) -> str:
    """wrk with `Connection: close`: it opens a new connection for every request."""
    return wrk_with(url, connections, duration, ["-H", "Connection: close"])


def wrk_with(url: str, connections: int, duration: int, extra: list[str]) -> str:
    argv = [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", *extra, url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


if __name__ == "__main__":
    main()
