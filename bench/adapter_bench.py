"""The adapter against redis_exporter, side by side on one loaded Redis.

Both exporters scrape the same redis-server (20 000+ keys in several databases, a busy
command table, streams with groups), first with default flags, then both with the same full
flag set (key checks, streams, key groups, a script, client list, config metrics, ping;
`-is-cluster` needs a cluster and is left to the tests). Scrapes alternate between the two,
over kept HTTP connections with `Accept-Encoding: gzip` as Prometheus sends it; each round
gives a median and p95 per exporter, and the reported ratio is the median over the rounds
of adapter / redis_exporter.
RSS is read from /proc after the first scrapes and again after 1 000 more.

The adapter runs on Debian's /usr/bin/python3 (the interpreter the offline image ships) from
a venv made here (.venv-bench), unless --python says otherwise.

    python bench/adapter_bench.py [--rounds 7] [--scrapes 200] [--flags default|full|both]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from interpreter import bench_python  # noqa: E402
from support.processes import RedisServer, Service, free_port  # noqa: E402


def load(server: RedisServer) -> None:
    c = server.client()
    c.execute_command("DEBUG", "POPULATE", 20000, "key", 32)
    server.client(db=1).execute_command("DEBUG", "POPULATE", 5000, "session")
    server.client(db=2).execute_command("DEBUG", "POPULATE", 3000, "cache")
    for i in range(500):
        server.client(db=1).expire(f"session:{i}", 3600)
    pipe = c.pipeline(transaction=False)
    for i in range(2000):  # a busy command table: many distinct commands
        pipe.get(f"key:{i}")
        pipe.incr("counter")
        pipe.lpush("list", i)
        pipe.sadd("set", i)
        pipe.hset("hash", str(i), i)
        pipe.zadd("zset", {str(i): i})
        pipe.pfadd("hll", i)
        pipe.exists(f"nokey:{i}")
    pipe.execute()
    for cmd in (
        "LRANGE list 0 10",
        "SMEMBERS set",
        "HGETALL hash",
        "ZRANGE zset 0 5",
        "PFCOUNT hll",
        "TYPE list",
        "TTL key:1",
        "STRLEN key:1",
        "MGET key:1 key:2",
    ):
        c.execute_command(*cmd.split())
    for i in range(3):  # streams with a group and a pending message, for --check-streams
        c.xadd(f"stream:{i}", {"n": str(i)})
        c.xgroup_create(f"stream:{i}", "readers", id="0")
        c.xreadgroup("readers", "reader", {f"stream:{i}": ">"}, count=1)
    if c.dbsize() < 20000:
        raise SystemExit("DEBUG POPULATE was refused: the Redis needs --enable-debug-command")


SCRIPT = 'return {"answer", "42", "counter", redis.call("GET", "counter")}\n'


def full_flags(script: Path) -> list[str]:
    """redis_exporter's flags for every source the loaded Redis has, the same for both."""
    return [
        "-check-keys",
        "db0=key:10*",
        "-check-single-keys",
        "db0=counter,db0=list,db0=set,db0=hash,db0=zset,db0=hll",
        "-count-keys",
        "db1=session:*",
        "-check-streams",
        "db0=stream:*",
        "-check-key-groups",
        "^(key):1,^(session)",
        "-script",
        str(script),
        "-export-client-list",
        "-include-config-metrics",
        "-ping-on-connect",
        "-include-system-metrics",
    ]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Scraper:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def scrape(self, gzip: bool = True) -> tuple[float, int]:
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        start = time.perf_counter()
        self.conn.request("GET", "/metrics", headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        return took, len(body)


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


@contextmanager
def loaded_redis(tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp / "redis").start()
    try:
        load(server)
        yield server
    finally:
        server.stop()


@contextmanager
def running(
    tmp: Path, python: str, server: RedisServer, flags: list[str]
) -> Iterator[tuple[Service, Service]]:
    services: list[Service] = []
    try:
        env = {"PYTHONPATH": str(ROOT)}
        port_a, port_b = free_port(), free_port()
        ours = Service(
            [
                python,
                "-m",
                "adapter",
                "--redis-addr",
                server.url,
                "--web-listen-address",
                f"127.0.0.1:{port_a}",
                *flags,
            ],
            port_a,
            tmp / "adapter.log",
            env=env,
        )
        theirs = Service(
            [
                "prometheus-redis-exporter",
                "-redis.addr",
                server.url,
                "-web.listen-address",
                f"127.0.0.1:{port_b}",
                *flags,
            ],
            port_b,
            tmp / "redis_exporter.log",
        )
        services += [ours.start(), theirs.start()]
        yield ours, theirs
    finally:
        for s in services:
            s.stop()


def measure(ours: Service, theirs: Service, rounds: int, per_round: int) -> dict[str, object]:
    a, b = Scraper(ours.port), Scraper(theirs.port)
    sizes = {}
    for name, s in (("adapter", a), ("redis_exporter", b)):
        sizes[name] = (s.scrape(gzip=False)[1], s.scrape(gzip=True)[1])
    for _ in range(20):  # warm up both
        a.scrape(), b.scrape()
    assert ours.proc is not None and theirs.proc is not None
    rss_start = {"adapter": rss_kib(ours.proc.pid), "redis_exporter": rss_kib(theirs.proc.pid)}
    ratios_median, ratios_p95 = [], []
    all_a: list[float] = []
    all_b: list[float] = []
    scrapes = 0
    for round_no in range(rounds):
        xa: list[float] = []
        xb: list[float] = []
        for i in range(per_round):
            # Alternate which goes first, so neither always scrapes a just-touched Redis.
            first, second = ((a, xa), (b, xb)) if i % 2 == 0 else ((b, xb), (a, xa))
            first[1].append(first[0].scrape()[0])
            second[1].append(second[0].scrape()[0])
        scrapes += per_round
        ratios_median.append(statistics.median(xa) / statistics.median(xb))
        ratios_p95.append(p95(xa) / p95(xb))
        all_a += xa
        all_b += xb
        print(
            f"round {round_no + 1}: adapter {statistics.median(xa) * 1e3:.2f} ms, "
            f"redis_exporter {statistics.median(xb) * 1e3:.2f} ms, "
            f"ratio {ratios_median[-1]:.2f}",
            file=sys.stderr,
        )
    while scrapes < 1000:  # RSS is compared after at least 1 000 scrapes
        a.scrape(), b.scrape()
        scrapes += 1
    rss_end = {"adapter": rss_kib(ours.proc.pid), "redis_exporter": rss_kib(theirs.proc.pid)}
    return {
        "all_a": all_a,
        "all_b": all_b,
        "ratios_median": ratios_median,
        "ratios_p95": ratios_p95,
        "sizes": sizes,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "scrapes": scrapes,
    }


def report(title: str, r: dict[str, Any]) -> None:
    all_a, all_b, sizes = r["all_a"], r["all_b"], r["sizes"]
    rss_start, rss_end = r["rss_start"], r["rss_end"]

    def ms(xs: list[float]) -> float:
        return statistics.median(xs) * 1e3

    print(f"\n{title}\n")
    print("| | adapter | redis_exporter | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| median scrape (ms) | {ms(all_a):.2f} | {ms(all_b):.2f} | "
        f"{statistics.median(r['ratios_median']):.2f} x |"
    )
    print(
        f"| p95 scrape (ms) | {p95(all_a) * 1e3:.2f} | {p95(all_b) * 1e3:.2f} | "
        f"{statistics.median(r['ratios_p95']):.2f} x |"
    )
    print(
        f"| response, plain (bytes) | {sizes['adapter'][0]} | {sizes['redis_exporter'][0]} | "
        f"{sizes['adapter'][0] / sizes['redis_exporter'][0]:.2f} x |"
    )
    print(
        f"| response, gzip (bytes) | {sizes['adapter'][1]} | {sizes['redis_exporter'][1]} | "
        f"{sizes['adapter'][1] / sizes['redis_exporter'][1]:.2f} x |"
    )
    for label, rss in (
        ("RSS after warm-up (MiB)", rss_start),
        (f"RSS after {r['scrapes']} scrapes (MiB)", rss_end),
    ):
        print(
            f"| {label} | {rss['adapter'] / 1024:.1f} | {rss['redis_exporter'] / 1024:.1f} | "
            f"{rss['adapter'] / rss['redis_exporter']:.2f} x |"
        )
    growth = (rss_end["adapter"] - rss_start["adapter"]) / 1024
    print(
        f"\nadapter RSS growth over the run: {growth:+.1f} MiB; per-round median ratios: "
        + ", ".join(f"{x:.2f}" for x in r["ratios_median"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scrapes", type=int, default=200, help="per exporter and round")
    parser.add_argument("--python", help="interpreter for the adapter (default: .venv-bench)")
    parser.add_argument("--flags", choices=("default", "full", "both"), default="both")
    args = parser.parse_args()
    for tool in ("redis-server", "prometheus-redis-exporter"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run scripts/bootstrap-host.sh")
    python = args.python or bench_python()
    version = subprocess.run([python, "-VV"], capture_output=True, text=True).stdout.strip()

    with tempfile.TemporaryDirectory() as tmp, loaded_redis(Path(tmp)) as server:
        script = Path(tmp) / "bench.lua"
        script.write_text(SCRIPT)
        sets = {"default": [], "full": full_flags(script)}
        chosen = ["default", "full"] if args.flags == "both" else [args.flags]
        for name in chosen:
            print(f"-- {name} flags", file=sys.stderr)
            with running(Path(tmp), python, server, sets[name]) as (ours, theirs):
                result = measure(ours, theirs, args.rounds, args.scrapes)
            report(
                f"{name} flags: adapter on {version}; redis_exporter 1.45 (Debian); "
                f"{args.rounds} rounds x {args.scrapes} alternating scrapes each, gzip as "
                "Prometheus asks",
                result,
            )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
