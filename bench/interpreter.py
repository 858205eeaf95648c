"""The interpreter the benchmarks run our services on: Debian's /usr/bin/python3, the one the
offline images ship (an optimised build; the machine's default python3 is not), in a venv
(.venv-bench) holding requirements.lock, rebuilt when the lock changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_python() -> str:
    venv = ROOT / ".venv-bench"
    python = venv / "bin" / "python"
    stamp = venv / ".lock"
    lock = (ROOT / "requirements.lock").read_text()
    if not (python.exists() and stamp.exists() and stamp.read_text() == lock):
        base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.lock")],
            check=True,
        )
        stamp.write_text(lock)
    return str(python)
