"""The git command line through asyncio subprocesses: one run, its output, and when it fails
an error that says what kind of failure it was (auth, network, rejected...) with secrets out.

No Git is reimplemented here (as kubernetes/git-sync, which also drives the `git` binary).
A run that is cancelled (SIGTERM, --sync-timeout) kills its git process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gitsync.auth import Auth

log = logging.getLogger(__name__)

FailureKind = Literal["auth", "network", "conflict", "rejected", "other"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("auth", "network", "conflict", "rejected", "other")

# What git (and ssh, curl under it) say, in the C locale, per kind. Order matters: an
# authentication failure also says "Could not read from remote repository".
_PATTERNS: tuple[tuple[FailureKind, re.Pattern[str]], ...] = (
    ("auth", re.compile(
        r"Authentication failed|could not read (Username|Password)|Permission denied \(|"
        r"Host key verification failed|HTTP (code|error) 40[13]|returned error: 40[13]|"
        r"terminal prompts disabled|access denied", re.IGNORECASE)),
    ("network", re.compile(
        r"Could not resolve host|Connection refused|Failed to connect|Connection timed out|"
        r"Connection reset|Operation timed out|Network is unreachable|No route to host|"
        r"Could not read from remote repository|remote end hung up unexpectedly|"
        r"returned error: 5\d\d|HTTP (code|error) 5\d\d|unable to access|"
        r"connect to host .* port", re.IGNORECASE)),
    ("rejected", re.compile(
        r"\[remote rejected\]|pre-receive hook declined|protected branch|"
        r"\[rejected\]|failed to push some refs", re.IGNORECASE)),
)


def classify(stderr: str) -> FailureKind:
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr):
            return kind
    return "other"


class GitError(Exception):
    """A git run that failed; `message` is safe to log (secrets removed)."""

    def __init__(self, what: str, code: int, stderr: str, kind: FailureKind | None = None) -> None:
        self.what, self.code, self.stderr = what, code, stderr
        self.kind: FailureKind = kind or classify(stderr)
        super().__init__(f"git {what} failed ({self.kind}, exit {code}): {summary(stderr)}")


def summary(stderr: str) -> str:
    """The lines of git's stderr worth a log line: the server's own words ("remote: ...",
    where a hook says why it declined), the lines that tell the kind of failure (ssh's
    "Host key verification failed" comes before git's generic ending), git's last lines."""
    lines = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith("remote:")
               or any(pattern.search(line) for _, pattern in _PATTERNS)][:5]
    last = [line for line in lines[-3:] if line not in telling]
    return " | ".join(telling + last) or "no output"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")


@dataclass
class Git:
    """Runs `command` with the credentials' variables and a fixed locale."""

    command: str = "git"
    auth: Auth = field(default_factory=Auth)
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. GIT_DIR, GIT_WORK_TREE

    def with_env(self, **env: str) -> Git:
        return Git(self.command, self.auth, {**self.env, **env})

    async def run(
        self,
        *args: str,
        cwd: Path | str | None = None,
        input: bytes | None = None,
        ok: Sequence[int] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run git; raise GitError unless the exit status is in `ok`."""
        full_env = {
            **os.environ,
            "LC_ALL": "C",  # stderr is matched against English messages
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            **self.auth.env(),
            **self.env,
            **(env or {}),
        }
        what = args[0] if args else ""
        log.debug("git %s", self.auth.redact(" ".join(args[:6])))
        proc = await asyncio.create_subprocess_exec(
            self.command,
            *args,
            cwd=cwd,
            env=full_env,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr_bytes = await proc.communicate(input)
        except BaseException:  # cancelled (SIGTERM, timeout): the git process goes too
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        stderr = self.auth.redact(stderr_bytes.decode("utf-8", "replace"))
        code = proc.returncode if proc.returncode is not None else -1
        if code not in ok:
            raise GitError(what, code, stderr)
        return Result(code, stdout, stderr)

    async def out(self, *args: str, cwd: Path | str | None = None) -> str:
        """Stdout of a successful run, stripped."""
        return (await self.run(*args, cwd=cwd)).text.strip()


_BYTES = re.compile(r"Writing objects:.*?,\s*([\d.]+)\s*(bytes|KiB|MiB|GiB)")
_UNIT = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def pushed_bytes(stderr: str) -> int:
    """Bytes sent, from `git push --progress`'s last "Writing objects" line (0 if none)."""
    matches = _BYTES.findall(stderr.replace("\r", "\n"))
    if not matches:
        return 0
    number, unit = matches[-1]
    return int(float(number) * _UNIT[unit])
