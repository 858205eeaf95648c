"""gitsync's latencies and memory, against a real smart-HTTP Git server (lighttpd + git
http-backend, basic auth; the integration tier's server).

- push: time from a file written under --push-dir to its commit being on the remote branch,
  median and p95, for each --debounce given (the floor is the debounce itself);
- pull: time from a commit pushed to the remote to --link showing it, median and p95, at the
  --period given (the expected value is about half the period plus one fetch);
- RSS of each gitsync process (VmHWM, the peak, from /proc), aim: 40 MB or less.

gitsync runs as users get it: the package as `pip install .` installs it, on Debian's
/usr/bin/python3 (the images' interpreter), from bench/interpreter.py's venv.

    python bench/gitsync_bench.py [--samples 20] [--debounce 200ms,1s,2s] [--period 500ms]

Not run in CI: it reports, it does not assert.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from interpreter import bench_python  # noqa: E402
from support.gitsync_process import GitSync, http_pull_args, http_push_args  # noqa: E402
from support.gitsync_servers import BareRepo, HttpGitServer, git  # noqa: E402
from support.processes import wait_for  # noqa: E402


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def rss_mb(process: GitSync) -> float:
    assert process.proc is not None
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_push(
    server: HttpGitServer, workdir: Path, debounce: str, samples: int, python: str
) -> tuple[list[float], float]:
    repo = server.repo(f"push-{debounce}.git")
    repo.commit_files({"seed.txt": "seed"})
    password = workdir / "password"
    password.write_text(server.password)
    base = workdir / f"push-{debounce}"
    base.mkdir()
    process = GitSync(
        http_push_args(
            server, password, base, "--debounce", debounce, "--period", "30s", repo=repo.path.name
        ),
        base / "gitsync.log",
        env={"PYTHONSAFEPATH": "1"},  # the installed package, never the source tree
        python=python,
    ).start()
    work = base / "work"
    wait_for(lambda: (work / "seed.txt").exists(), what="seeded")
    latencies: list[float] = []
    try:
        for i in range(samples):
            name = f"file-{i}.txt"
            started = time.monotonic()
            (work / name).write_text(f"sample {i}\n")
            wait_for(lambda n=name: repo.read(n) is not None, timeout=60, what=name)
            latencies.append(time.monotonic() - started)
        return latencies, rss_mb(process)
    finally:
        process.stop()


def bench_pull(
    server: HttpGitServer, workdir: Path, period: str, samples: int, python: str
) -> tuple[list[float], float]:
    repo: BareRepo = server.repo("pull.git")
    repo.commit_files({"value.txt": "0"})
    password = workdir / "password"
    password.write_text(server.password)
    base = workdir / "pull"
    base.mkdir()
    process = GitSync(
        http_pull_args(server, password, base, "--period", period, repo="pull.git"),
        base / "gitsync.log",
        env={"PYTHONSAFEPATH": "1"},  # the installed package, never the source tree
        python=python,
    ).start()
    link = base / "pulled" / "current" / "value.txt"
    wait_for(lambda: link.exists(), what="first sync")
    scratch = base / "writer"
    git("clone", "-q", str(repo.path), str(scratch))
    latencies: list[float] = []
    try:
        for i in range(1, samples + 1):
            (scratch / "value.txt").write_text(str(i))
            git("commit", "-qam", f"rev {i}", cwd=scratch)
            started = time.monotonic()
            git("push", "-q", "origin", "HEAD:main", cwd=scratch)
            wait_for(lambda v=str(i): link.read_text() == v, timeout=60, what=f"rev {i}")
            latencies.append(time.monotonic() - started)
        return latencies, rss_mb(process)
    finally:
        process.stop()


def report(what: str, latencies: list[float], rss: float) -> None:
    print(
        f"{what:<34} median {statistics.median(latencies) * 1000:7.0f} ms   "
        f"p95 {p95(latencies) * 1000:7.0f} ms   peak RSS {rss:5.1f} MB"
        f"{'' if rss <= 40 else '  (above the 40 MB aim)'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--debounce",
        default="200ms,1s,2s",
        help="comma-separated --debounce values for the push runs",
    )
    parser.add_argument("--period", default="500ms", help="--period of the pull run")
    parser.add_argument("--python", help="interpreter for gitsync (default: .venv-bench)")
    args = parser.parse_args()
    python = args.python or bench_python()
    with tempfile.TemporaryDirectory(prefix="gitsync-bench-") as tmp:
        workdir = Path(tmp)
        server = HttpGitServer(workdir / "http").start()
        try:
            for debounce in args.debounce.split(","):
                latencies, rss = bench_push(server, workdir, debounce.strip(), args.samples, python)
                report(f"push, --debounce {debounce.strip()}", latencies, rss)
            latencies, rss = bench_pull(server, workdir, args.period, args.samples, python)
            report(f"pull, --period {args.period}", latencies, rss)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
