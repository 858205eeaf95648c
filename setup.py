"""The build's one decision: compile the proxies' hot path with mypyc, or ship it pure.

Everything else about the package is in pyproject.toml. The hot path (the engine in
podkit/proxy, the ambassador's balancer, the sidecar's first-bytes protocol) is plain typed
Python that mypyc turns into C extensions; a compiled module is found before the .py file
beside it, so the pure modules stay in the package as the fallback and the reference.

POD_PATTERNS_BUILD chooses:
  auto      (default) compiled where mypyc and a C compiler with Python's headers are at hand,
            pure otherwise, so `pip install .` works on any machine; an editable install
            (`pip install -e .`) stays pure, since compiled modules in the source tree would
            shadow every edit of the .py files beside them;
  compiled  compiled, or the build fails (the images and CI's compiled tier ask for this);
  pure      never compiled (the editable install used for development).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

HOT_PATH = [
    "podkit/proxy/settings.py",
    "podkit/proxy/responses.py",
    "podkit/proxy/headers.py",
    "podkit/proxy/head.py",
    "podkit/proxy/stats.py",
    "podkit/proxy/flow.py",
    "podkit/proxy/checks.py",
    "podkit/proxy/forwarding.py",
    "podkit/proxy/access.py",
    "podkit/proxy/context.py",
    "podkit/proxy/connection.py",
    "podkit/proxy/upstream.py",
    "podkit/proxy/tunnel.py",
    "podkit/proxy/attempt.py",
    "podkit/proxy/exchange.py",
    "podkit/proxy/intake.py",
    "podkit/proxy/downstream.py",
    "podkit/proxy/proxy_header.py",
    "podkit/proxy/server.py",
    "ambassador/balancer.py",
    "sidecar/first_bytes.py",
]


def can_compile() -> str | None:
    """None when a C extension can be built here, else why not."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python.h (install the python3-dev package)"
    return None


def ext_modules() -> list[object]:
    mode = os.environ.get("POD_PATTERNS_BUILD", "auto")
    if mode not in ("auto", "compiled", "pure"):
        raise SystemExit(f"POD_PATTERNS_BUILD must be auto, compiled or pure, not {mode!r}")
    if mode == "pure" or (mode == "auto" and "editable_wheel" in sys.argv):
        return []
    why = can_compile()
    try:
        from mypyc.build import mypycify
    except ImportError:
        why = why or "mypyc is not installed"
    if why is not None:
        if mode == "compiled":
            raise SystemExit(f"POD_PATTERNS_BUILD=compiled, but {why}")
        print(f"pod-patterns: building the pure-Python hot path: {why}")
        return []
    # Only the modules of the packages this tree holds (an image's build context may
    # hold only some services).
    sources = [path for path in HOT_PATH if Path(path).exists()]
    return list(mypycify(sources, opt_level="3", debug_level="0"))


setup(ext_modules=ext_modules())
