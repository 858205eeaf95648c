"""Real Git servers for the gitsync tests, on 127.0.0.1 free ports.

- `HttpGitServer`: Git's own smart-HTTP CGI (`git http-backend`) behind lighttpd with basic
  auth, as the Git book sets it up; push needs an authenticated user (REMOTE_USER).
- `SshGitServer`: Debian's OpenSSH `sshd`, on a free port with a host key and an authorized
  key made for the test; Git runs `git-upload-pack`/`git-receive-pack` through the login shell.

Both serve bare repositories under one directory, which the tests also touch directly
(`BareRepo`) to make commits "on the remote".
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import free_port, wait_for
from support.tools import require_binary

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "remote user",
    "GIT_AUTHOR_EMAIL": "remote@example.com",
    "GIT_COMMITTER_NAME": "remote user",
    "GIT_COMMITTER_EMAIL": "remote@example.com",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """Run git for the test itself (never through the service under test)."""
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd or Path.cwd())}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass
class BareRepo:
    """A bare repository the servers serve; commits are made through a scratch clone."""

    path: Path
    branch: str = "main"

    def create(self) -> BareRepo:
        git("init", "-q", "--bare", f"--initial-branch={self.branch}", str(self.path))
        git("config", "http.receivepack", "true", cwd=self.path)
        return self

    def commit_files(self, files: dict[str, str | None], message: str = "remote change") -> str:
        """Commit on the remote branch: a value of None deletes the file. Returns the hash."""
        scratch = self.path.parent / f".scratch-{self.path.name}"
        if not scratch.exists():
            git("clone", "-q", str(self.path), str(scratch))
        if self.head():
            git("fetch", "-q", "origin", cwd=scratch)
            git("checkout", "-q", "-B", self.branch, f"origin/{self.branch}", cwd=scratch)
        else:
            git("checkout", "-q", "--orphan", self.branch, cwd=scratch, check=False)
        for name, text in files.items():
            target = scratch / name
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        git("add", "-A", cwd=scratch)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=scratch)
        git("push", "-q", "origin", f"HEAD:refs/heads/{self.branch}", cwd=scratch)
        return self.head(self.branch)

    def head(self, branch: str | None = None) -> str:
        out = git("rev-parse", "--verify", "-q", f"refs/heads/{branch or self.branch}",
                  cwd=self.path, check=False)
        return out.strip()

    def read(self, name: str, ref: str | None = None) -> str | None:
        """A file's text on the branch (or `ref`), None when it is not there."""
        ref = ref or f"refs/heads/{self.branch}"
        out = subprocess.run(
            ["git", "show", f"{ref}:{name}"], cwd=self.path, capture_output=True, text=True,
            check=False,
        )
        return out.stdout if out.returncode == 0 else None

    def files(self, ref: str | None = None) -> list[str]:
        ref = ref or f"refs/heads/{self.branch}"
        out = git("ls-tree", "-r", "--name-only", ref, cwd=self.path, check=False)
        return out.splitlines()

    def branches(self) -> list[str]:
        out = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=self.path)
        return out.splitlines()

    def fsck(self) -> None:
        git("fsck", "--strict", cwd=self.path)

    def reject_pushes(self, why: str | None) -> None:
        """A pre-receive hook that declines every push with `why`; None removes it."""
        hook = self.path / "hooks" / "pre-receive"
        if why is None:
            hook.unlink(missing_ok=True)
            return
        hook.write_text(f"#!/bin/sh\necho '{why}' >&2\nexit 1\n")
        hook.chmod(0o755)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _port_answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class HttpGitServer:
    """lighttpd + git http-backend on 127.0.0.1:port, basic auth for `user`:`password`."""

    workdir: Path
    user: str = "gitsync"
    password: str = "s3cr3t-Pa55word"  # a test fixture's
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def repos(self) -> Path:
        return self.workdir / "repos"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/git/{name}"

    def start(self) -> HttpGitServer:
        lighttpd = require_binary("lighttpd")
        backend = Path("/usr/lib/git-core/git-http-backend")
        self.repos.mkdir(parents=True, exist_ok=True)
        (self.workdir / "users").write_text(f"{self.user}:{self.password}\n")
        (self.workdir / "www").mkdir(exist_ok=True)
        conf = self.workdir / "lighttpd.conf"
        conf.write_text(
            f"""
server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi")
server.document-root = "{self.workdir / 'www'}"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{self.workdir / 'error.log'}"
server.max-request-size = 0
auth.backend = "plain"
auth.backend.plain.userfile = "{self.workdir / 'users'}"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
    cgi.assign = ("" => "")
    setenv.set-environment = (
        "GIT_PROJECT_ROOT" => "{self.repos}",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "GIT_CONFIG_NOSYSTEM" => "1",
        "HOME" => "{self.workdir}"
    )
}}
"""
        )
        (self.workdir / "error.log").touch()
        # safe.directory: the repos belong to the test's user, who also runs lighttpd.
        (self.workdir / ".gitconfig").write_text("[safe]\n\tdirectory = *\n")
        with open(self.workdir / "lighttpd.out", "ab") as out:
            self.proc = subprocess.Popen(
                [lighttpd, "-D", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=out
            )
        wait_for(self._answers, what=f"lighttpd on {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            out = self.workdir / "lighttpd.out"
            raise RuntimeError(out.read_text() + (self.workdir / "error.log").read_text())
        return _port_answers(self.port)

    def stop(self) -> None:
        _stop(self.proc)
        wait_for(lambda: not _port_answers(self.port), what="lighttpd gone")

    def repo(self, name: str = "repo.git", branch: str = "main") -> BareRepo:
        return BareRepo(self.repos / name, branch).create()


@dataclass
class SshGitServer:
    """OpenSSH's sshd on 127.0.0.1:port for this user, one host key, one client key."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def repos(self) -> Path:
        return self.workdir / "repos"

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    def url(self, name: str) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{self.repos / name}"

    def start(self) -> SshGitServer:
        sshd = require_binary("sshd")
        require_binary("ssh")
        self.repos.mkdir(parents=True, exist_ok=True)
        host_key = self.workdir / "host_key"
        for key in (host_key, self.client_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        shutil.copy(self.client_key.with_suffix(".pub"), self.workdir / "authorized_keys")
        public = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")
        conf = self.workdir / "sshd_config"
        conf.write_text(
            f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.workdir / 'sshd.pid'}
AuthorizedKeysFile {self.workdir / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
SetEnv GIT_CONFIG_NOSYSTEM=1
"""
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        with open(self.workdir / "sshd.log", "ab") as out:
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=out
            )
        wait_for(self._answers, what=f"sshd on {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError((self.workdir / "sshd.log").read_text())
        return _port_answers(self.port)

    def stop(self) -> None:
        _stop(self.proc)

    def repo(self, name: str = "repo.git", branch: str = "main") -> BareRepo:
        return BareRepo(self.repos / name, branch).create()


def settle(seconds: float) -> None:
    """A pause the scenario needs (e.g. longer than --debounce), not a timing assertion."""
    time.sleep(seconds)
