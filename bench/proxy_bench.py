"""Our HTTP proxies against nginx and HAProxy, side by side on one fast backend.

Two scenarios, each with its peers configured the way the issues compare them:

- sidecar: TLS termination. wrk -> https://127.0.0.1:P -> proxy -> http://127.0.0.1:B.
- ambassador: plain HTTP, weighted round robin 3:1 over two backends B1, B2.

The backends are nginx processes (1 worker each) answering `200 ok\\n`, shared by every proxy.
Each proxy runs one worker/thread; all of them run for the whole benchmark. A round runs
`wrk -t1 -c32 -d5s --latency` (after a 1 s warm-up) against each proxy in turn, the order
rotated from round to round. Reported per proxy: the median req/s and p99 over the rounds, and
the ratios against nginx and HAProxy as the median of the per-round ratios (a single round
swings too much to mean anything). Then RSS after the runs, and RSS while 1 000 idle
keep-alive connections (one request done on each) are held open.

Our proxies run in two builds side by side, `compiled` (the hot path built with mypyc, what
the images and `pip install .` with a C compiler get) and `pure`, each on Debian's
/usr/bin/python3 (the interpreter the images ship) from a venv of its own made here
(bench/interpreter.py), unless --python says otherwise.

    python bench/proxy_bench.py [--scenario sidecar|ambassador] [--rounds 7] [--duration 5]
                                [--only nginx,haproxy,compiled,pure] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import resource
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing import Literal

from interpreter import BUILDS, bench_python

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
WRK = "/usr/bin/wrk"
PROXIES = ("nginx", "haproxy", *BUILDS)
PEERS = ("nginx", "haproxy")
Scenario = Literal["sidecar", "ambassador"]


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A server process in its own session (Ctrl-C reaches only us), stopped with its group."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                cwd=ROOT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen is None:
            return
        pgid = self.popen.pid  # start_new_session: the group id is the leader's pid
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.popen.poll()

    def rss_kib(self) -> int:
        """VmRSS of the process and every descendant (a proxy may fork workers)."""
        assert self.popen is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        total, todo = 0, [self.popen.pid]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total


def launch(stack: ExitStack, proc: Proc, port: int, tls: bool, timeout: float = 20.0) -> Proc:
    proc.start()
    stack.callback(proc.stop)
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        try:
            if fetch(port, tls, 1)[0][0] == 200:
                return proc
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not answer on :{port}: {exc!r}") from exc
        time.sleep(0.05)


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    pem: Path  # cert + key in one file, as HAProxy's `crt` wants


def make_tls(tmp: Path) -> Tls:
    """One EC P-256 key and certificate for 127.0.0.1/localhost, the same for every proxy."""
    tls = Tls(tmp / "cert.pem", tmp / "key.pem", tmp / "haproxy.pem")
    try:
        import trustme

        key_type = trustme.KeyType.ECDSA  # P-256 in trustme
    except (ImportError, AttributeError):
        argv = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes".split()
        argv += ["-days", "2", "-subj", "/CN=localhost"]
        argv += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        argv += ["-keyout", str(tls.key), "-out", str(tls.cert)]
        subprocess.run(argv, check=True, capture_output=True)
    else:
        ca = trustme.CA(key_type=key_type)
        leaf = ca.issue_cert("127.0.0.1", "localhost", key_type=key_type)
        tls.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        tls.key.write_bytes(leaf.private_key_pem.bytes())
    tls.pem.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    return tls


def nginx_conf(tmp: Path, name: str, http_block: str) -> Path:
    """A one-process nginx (no master, no daemon) whose files all live in `tmp`."""
    conf = tmp / f"{name}.conf"
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{name}-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
{temp}
{http_block}
}}
"""
    )
    return conf


def nginx_proc(tmp: Path, name: str, conf: Path) -> Proc:
    argv = [NGINX, "-p", f"{tmp}/", "-e", f"{tmp}/{name}.error.log", "-c", str(conf)]
    return Proc(name, argv, tmp / f"{name}.log")


def backend(tmp: Path, name: str, port: int) -> Proc:
    # X-Backend lets the sanity check see the weighted split; every proxy forwards it alike.
    block = f"""    server {{
        listen 127.0.0.1:{port};
        location / {{ add_header X-Backend {name}; return 200 "ok\\n"; }}
    }}"""
    return nginx_proc(tmp, name, nginx_conf(tmp, name, block))


def nginx_proxy(tmp: Path, scenario: Scenario, port: int, upstreams: list[int], tls: Tls) -> Proc:
    servers = "\n".join(
        f"        server 127.0.0.1:{p}{' weight=3' if i == 0 and len(upstreams) > 1 else ''};"
        for i, p in enumerate(upstreams)
    )
    listen = f"127.0.0.1:{port} ssl" if scenario == "sidecar" else f"127.0.0.1:{port}"
    # nginx 1.22 leaves TLSv1.3 out of its default ssl_protocols; HAProxy and Python offer it.
    certs = (
        f"ssl_certificate {tls.cert}; ssl_certificate_key {tls.key}; ssl_protocols TLSv1.2 TLSv1.3;"
        if scenario == "sidecar"
        else ""
    )
    # keepalive_requests is lifted on both sides (nginx closes a kept connection after 1 000
    # requests by default; HAProxy and ours do not), so no proxy churns connections mid-run.
    block = f"""    upstream b {{
{servers}
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen};
        {certs}
        location / {{
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # What a team puts in front of an app (and what ours always sends).
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}"""
    return nginx_proc(tmp, "nginx", nginx_conf(tmp, "nginx", block))


def haproxy_proxy(tmp: Path, scenario: Scenario, port: int, upstreams: list[int], tls: Tls) -> Proc:
    ssl_bind = f" ssl crt {tls.pem}" if scenario == "sidecar" else ""
    if len(upstreams) > 1:
        servers = "    balance roundrobin\n" + "".join(
            f"    server b{i + 1} 127.0.0.1:{p} weight {3 if i == 0 else 1}\n"
            for i, p in enumerate(upstreams)
        )
    else:
        servers = f"    server b1 127.0.0.1:{upstreams[0]}\n"
    conf = tmp / "haproxy.cfg"
    conf.write_text(
        f"""global
    nbthread 1
    maxconn 8192

defaults
    mode http
    maxconn 8192
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    timeout http-keep-alive 75s

frontend fe
    bind 127.0.0.1:{port}{ssl_bind}
    default_backend be

backend be
    http-reuse always
    option forwardfor
    http-request set-header X-Forwarded-Proto {"https" if scenario == "sidecar" else "http"}
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
{servers}"""
    )
    return Proc("haproxy", [HAPROXY, "-db", "-f", str(conf)], tmp / "haproxy.log")


def our_proxy(
    tmp: Path, scenario: Scenario, port: int, upstreams: list[int], tls: Tls, python: str, name: str
) -> Proc:
    argv = [python, "-m", scenario, "--listen", f"127.0.0.1:{port}"]
    if scenario == "sidecar":
        argv += ["--upstream", f"http://127.0.0.1:{upstreams[0]}"]
        argv += ["--cert-file", str(tls.cert), "--key-file", str(tls.key)]
    else:
        argv += ["--upstream", f"http://127.0.0.1:{upstreams[0]} weight=3"]
        argv += ["--upstream", f"http://127.0.0.1:{upstreams[1]}"]
    argv += ["--admin-listen", f"127.0.0.1:{free_port()}"]
    # The peers run with `access_log off`; ours logs access by default, as nginx does.
    argv += ["--access-log", "false"]
    # The installed package, never the source tree it is started from.
    env = {"PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1"}
    return Proc(name, argv, tmp / f"{name}.log", env=env)


# --- client side -----------------------------------------------------------------------------


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a benchmark, not a trust test
    return ctx


def fetch(port: int, tls: bool, n: int) -> list[tuple[int, bytes, str]]:
    """`n` GETs on one kept connection: (status, body, X-Backend) each."""
    conn: http.client.HTTPConnection
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=client_context())
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        out = []
        for _ in range(n):
            conn.request("GET", "/")
            response = conn.getresponse()
            out.append((response.status, response.read(), response.getheader("X-Backend", "")))
        return out
    finally:
        conn.close()


def tls_summary(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_context().wrap_socket(raw, server_hostname="localhost") as s:
            return f"{s.version()} {s.cipher()[0]}"  # type: ignore[index]


IDLE_HOLD = 12.0  # seconds the idle connections are held before RSS is read


async def _rss_with_idle(proc: Proc, port: int, tls: bool, n: int) -> tuple[int, int]:
    ctx = client_context() if tls else None
    gate = asyncio.Semaphore(50)  # below every proxy's listen backlog
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            writers.append(writer)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())

    try:
        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        # Steady state of holding them, every keep-alive timeout being 75 s: past one of
        # podkit.memory's 10 s trims, the freed TLS buffers' pages given back.
        await asyncio.sleep(IDLE_HOLD)
        return proc.rss_kib(), sum(r is None for r in results)
    finally:
        for w in writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


def rss_with_idle(proc: Proc, port: int, tls: bool, n: int) -> tuple[int, int]:
    """RSS (KiB) while `n` kept-alive connections, one request done on each, have sat idle
    for IDLE_HOLD seconds."""
    return asyncio.run(_rss_with_idle(proc, port, tls, n))


# --- wrk -------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class Run:
    round: int
    position: int
    proxy: str
    rps: float
    p99_ms: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)


def wrk(url: str, connections: int, duration: int) -> str:
    argv = [WRK, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def parse_wrk(text: str) -> tuple[float, float, int, dict[str, int]]:
    """req/s, p99 in ms, requests, errors from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    if not (rps and p99 and total):
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    errors: dict[str, int] = {}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        for kind, count in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            if int(count):
                errors[kind] = int(count)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors["non-2xx"] = int(non2xx.group(1))
    latency = float(p99.group(1)) * UNITS[p99.group(2)]
    return float(rps.group(1)), latency, int(total.group(1)), errors


# --- report ----------------------------------------------------------------------------------


def ratios(runs: list[Run], proxy: str, peer: str) -> tuple[list[float], list[float]]:
    """Per-round ratios proxy/peer: req/s and p99, each from the two runs of the same round."""
    by_round: dict[int, dict[str, Run]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.proxy] = r
    rps, p99 = [], []
    for rnd in sorted(by_round):
        a, b = by_round[rnd].get(proxy), by_round[rnd].get(peer)
        if a and b and b.rps and b.p99_ms:
            rps.append(a.rps / b.rps)
            p99.append(a.p99_ms / b.p99_ms)
    return rps, p99


def fmt_ratio(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} x" if xs else "—"


def version_of(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    return (done.stdout + done.stderr).strip().splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["sidecar", "ambassador"], default="sidecar")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default=",".join(PROXIES), help="comma list of proxies")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections for RSS")
    parser.add_argument(
        "--python", help="one interpreter for both builds (default: a venv per build)"
    )
    parser.add_argument("--json", type=Path, help="write the raw per-round numbers here")
    args = parser.parse_args()
    scenario: Scenario = args.scenario
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    if not chosen or set(chosen) - set(PROXIES):
        parser.error(f"--only takes a comma list of {', '.join(PROXIES)}")
    chosen = [p for p in PROXIES if p in chosen]
    for tool in (NGINX, HAPROXY, WRK):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is missing: run scripts/bootstrap-host.sh")
    pythons = {build: args.python or bench_python(build) for build in BUILDS if build in chosen}

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # children inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every process
    tls = scenario == "sidecar"

    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        cert = make_tls(tmp)
        upstreams = [free_port() for _ in range(1 if scenario == "sidecar" else 2)]
        for i, port in enumerate(upstreams):
            launch(stack, backend(tmp, f"b{i + 1}", port), port, tls=False)
        makers = {"nginx": nginx_proxy, "haproxy": haproxy_proxy}
        procs: dict[str, Proc] = {}
        ports: dict[str, int] = {}
        for name in chosen:
            ports[name] = free_port()
            if name in pythons:
                proc = our_proxy(tmp, scenario, ports[name], upstreams, cert, pythons[name], name)
            else:
                proc = makers[name](tmp, scenario, ports[name], upstreams, cert)
            procs[name] = launch(stack, proc, ports[name], tls)

        versions = {
            "nginx": version_of([NGINX, "-v"]),
            "haproxy": version_of([HAPROXY, "-v"]),
            "wrk": version_of([WRK, "-v"]),
        }
        for name, python in pythons.items():
            versions[name] = f"{name}: " + version_of([python, "-VV"])
        print(f"{scenario} on {os.cpu_count()} CPUs; " + "; ".join(versions.values()))
        for name in chosen:  # the proxies answer, and split 3:1 where they should
            answers = fetch(ports[name], tls, 40)
            good = sum(status == 200 and body == b"ok\n" for status, body, _ in answers)
            split = Counter(b for _, _, b in answers)
            shown = ", ".join(f"{k or '?'} {v}" for k, v in sorted(split.items()))
            extra = f", {tls_summary(ports[name])}" if tls else ""
            print(f"  {name}: {good}/40 answers ok ({shown}){extra}")
            if good != 40:
                raise SystemExit(f"{name} does not proxy correctly: {answers[:3]}")

        scheme = "https" if tls else "http"
        runs: list[Run] = []
        rss_first: dict[str, int] = {}  # after each proxy's first round: pools and caches warm
        for rnd in range(args.rounds):
            order = chosen[rnd % len(chosen) :] + chosen[: rnd % len(chosen)]
            line = []
            for position, name in enumerate(order):
                url = f"{scheme}://127.0.0.1:{ports[name]}/"
                wrk(url, args.connections, 1)  # warm-up
                rps, p99, total, errors = parse_wrk(wrk(url, args.connections, args.duration))
                procs[name].check_alive()
                runs.append(Run(rnd + 1, position, name, rps, p99, total, errors))
                if rnd == 0:
                    rss_first[name] = procs[name].rss_kib()
                flag = f" ERRORS {errors}" if errors else ""
                line.append(f"{name} {rps:.0f} req/s p99 {p99:.2f} ms{flag}")
            print(f"round {rnd + 1}/{args.rounds}: " + " | ".join(line), file=sys.stderr)

        rss_after = {name: procs[name].rss_kib() for name in chosen}
        rss_idle = {}
        for name in chosen:
            rss_idle[name] = rss_with_idle(procs[name], ports[name], tls, args.idle)

    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s --latency, keep-alive, "
        f"{'TLS (EC P-256)' if tls else 'plain HTTP, WRR 3:1'}; {args.rounds} rounds, "
        "1 s warm-up before each run, order rotated per round; medians over rounds, "
        "ratios = median of per-round ratios\n"
    )
    print(
        "| proxy | req/s | p99 | req/s vs nginx | p99 vs nginx "
        "| req/s vs haproxy | p99 vs haproxy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    summary: dict[str, dict[str, float | None]] = {}
    for name in chosen:
        mine = [r for r in runs if r.proxy == name]
        rps = statistics.median(r.rps for r in mine)
        p99 = statistics.median(r.p99_ms for r in mine)
        cells = [name, f"{rps:.0f}", f"{p99:.2f} ms"]
        summary[name] = {"rps": rps, "p99_ms": p99}
        for peer in PEERS:
            if name == peer:
                cells += ["—", "—"]
                continue
            r_rps, r_p99 = ratios(runs, name, peer)
            cells += [fmt_ratio(r_rps), fmt_ratio(r_p99)]
            summary[name][f"rps_vs_{peer}"] = statistics.median(r_rps) if r_rps else None
            summary[name][f"p99_vs_{peer}"] = statistics.median(r_p99) if r_p99 else None
        print("| " + " | ".join(cells) + " |")

    # Growth: RSS after the last round against after the first, over the requests served in
    # between (wrk's counts; warm-ups not counted), so a leak shows as growth per request.
    print(
        "\n| proxy | RSS after round 1 | RSS after the runs | growth | over requests "
        f"| RSS with {args.idle} idle connections |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    growth: dict[str, dict[str, int]] = {}
    for name in chosen:
        kib, held = rss_idle[name]
        note = "" if held == args.idle else f" (only {held} held)"
        served = sum(r.requests for r in runs if r.proxy == name and r.round > 1)
        delta = rss_after[name] - rss_first[name]
        growth[name] = {"kib": delta, "requests": served}
        print(
            f"| {name} | {rss_first[name] / 1024:.1f} MiB | {rss_after[name] / 1024:.1f} MiB "
            f"| {delta / 1024:+.1f} MiB | {served:,} | {kib / 1024:.1f} MiB{note} |"
        )
    bad = [r for r in runs if r.errors]
    if bad:
        print(f"\n{len(bad)} runs had errors: " + "; ".join(f"{r.proxy} {r.errors}" for r in bad))

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "scenario": scenario,
                    "rounds": args.rounds,
                    "duration_s": args.duration,
                    "connections": args.connections,
                    "cpus": os.cpu_count(),
                    "versions": versions,
                    "runs": [asdict(r) for r in runs],
                    "summary": summary,
                    "rss_kib": {
                        n: {"after_runs": rss_after[n], "idle": rss_idle[n][0]} for n in chosen
                    },
                    "idle_connections": {n: rss_idle[n][1] for n in chosen},
                    "rss_growth_after_round_1": growth,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        main()
    except KeyboardInterrupt:  # every process is already stopped by then
        sys.exit(130)
