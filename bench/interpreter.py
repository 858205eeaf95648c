"""The interpreter the benchmarks run our services on: Debian's /usr/bin/python3, the one the
offline images ship (an optimised build; the machine's default python3 is not), in a venv
per build (.venv-bench-compiled, .venv-bench-pure) holding requirements.lock and the package
as `pip install .` installs it, rebuilt when the lock or the sources change.

compiled: the proxies' hot path built with mypyc (setup.py), as the images and a
          `pip install .` with a C compiler get it;
pure:     the same package with POD_PATTERNS_BUILD=pure.

Our services are started with PYTHONSAFEPATH=1, so they import the installed package, never
the source tree they are started from.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
Build = Literal["compiled", "pure"]
BUILDS: tuple[Build, ...] = ("compiled", "pure")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml", "setup.py"):
        digest.update((ROOT / name).read_bytes())
    for folder in ("podkit", "sidecar", "ambassador", "adapter", "echoserver"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def bench_python(build: Build = "compiled") -> str:
    venv = ROOT / f".venv-bench-{build}"
    python = venv / "bin" / "python"
    stamp = venv / ".fingerprint"
    want = _fingerprint()
    if not (python.exists() and stamp.exists() and stamp.read_text() == want):
        base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
        subprocess.run(
            [*pip, "--no-deps", "--force-reinstall", str(ROOT)],
            check=True,
            env={**os.environ, "POD_PATTERNS_BUILD": build},
        )
        stamp.write_text(want)
    return str(python)
