"""Tools the tests need from the machine: skipped on a developer's machine, failed under CI."""

from __future__ import annotations

import os
import shutil

import pytest


def require(what: str, ok: bool, why: str) -> None:
    """Skip when a tool is missing on a developer's machine; fail under CI.

    CI installs everything (.ci/run), so there a missing tool is a broken setup, never a
    reason to pass quietly.
    """
    if ok:
        return
    message = f"{what} is not available: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: missing tools fail the run)", pytrace=False)
    pytest.skip(message)


def require_binary(name: str) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    require(name, path is not None, "install it with scripts/bootstrap-host.sh")
    assert path is not None
    return path
