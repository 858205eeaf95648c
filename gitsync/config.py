"""gitsync's options, declared once: git-sync v4's flags and GITSYNC_* variables for pull
mode, and push mode's own (chosen with --mode push)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from podkit import logs
from podkit.lifecycle import DEFAULT_SHUTDOWN_TIMEOUT
from podkit.options import (
    OptionError,
    describe,
    option,
    parse_bool,
    parse_choice,
    parse_duration,
)

PROG = "gitsync"
DESCRIPTION = (
    "Git sidecar. Pull mode (the default) is a drop-in for kubernetes/git-sync v4: it keeps "
    "--root/--link at the remote --ref, published atomically. Push mode (--mode push) commits "
    "what the main container writes under --push-dir and pushes it to --branch."
)

Mode = Literal["pull", "push"]
GcMode = Literal["auto", "always", "aggressive", "off"]

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """Bytes from '1048576', '100k', '50M', '1Gi' (a trailing 'b' is allowed)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise OptionError(f"expected a size such as 50M, 512Ki or 1000000, got {text!r}")
    unit = (match.group(2) or "").lower().removesuffix("b")
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parse_bind(text: str) -> tuple[str, int] | None:
    """git-sync's --http-bind: ':1234' or 'host:1234'; empty turns the endpoint off."""
    value = text.strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise OptionError(f"expected host:port or :port, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_int(text: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise OptionError(f"expected an integer, got {text!r}") from None


def is_ssh_url(url: str) -> bool:
    """ssh://... or scp-like user@host:path (what git itself treats as SSH)."""
    if url.startswith(("ssh://", "git+ssh://", "ssh+git://")):
        return True
    head = url.split("/", 1)[0]
    return "://" not in url and ":" in head and not re.fullmatch(r"[A-Za-z]:", head[:2])


def default_link(repo: str) -> str:
    """git-sync's default --link: the leaf of --repo, without '.git'."""
    leaf = re.split(r"[/:]", repo.rstrip("/"))[-1]
    return leaf.removesuffix(".git") or "repo"


@dataclass(frozen=True)
class GitSyncConfig:
    ENV_PREFIX: ClassVar[str] = "GITSYNC"

    mode: Mode = option(
        "pull", env="*_MODE", parse=parse_choice("pull", "push"),
        help="pull: keep --root/--link at the remote --ref (git-sync); "
        "push: commit and push what is written under --push-dir",
    )
    # ---- git-sync v4 ------------------------------------------------------------------------
    repo: str = option("", env="*_REPO", help="the Git repository to sync (required)")
    ref: str = option("HEAD", env="*_REF", help="pull: the branch, tag or hash to check out")
    root: str = option(
        "", env="*_ROOT",
        help="directory for gitsync's repository (pull: also its worktrees and --link; "
        "required)",
    )
    link: str = option(
        "", env="*_LINK",
        help="pull: symlink to the current worktree, absolute or relative to --root "
        "(default: the leaf of --repo)",
    )
    period: float = option(
        10.0, env="*_PERIOD", parse=parse_duration,
        help="time between syncs (pull) or remote checks (push), at least 10ms",
    )
    sync_timeout: float = option(
        120.0, env="*_SYNC_TIMEOUT", parse=parse_duration,
        help="the total time allowed for one sync, at least 10ms",
    )
    depth: int = option(
        1, env="*_DEPTH", parse=parse_int,
        help="pull: shallow clone of this many commits; 0 is the full history",
    )
    one_time: bool = option(False, env="*_ONE_TIME", parse=parse_bool,
                            help="pull: exit after the first sync (an init container)")
    max_failures: int = option(
        0, env="*_MAX_FAILURES", parse=parse_int,
        help="consecutive failed syncs allowed before exiting; negative retries forever",
    )
    git: str = option("git", env="*_GIT", help="the git command to run")
    git_gc: GcMode = option(
        "auto", env="*_GIT_GC", parse=parse_choice("auto", "always", "aggressive", "off"),
        help="pull: git gc after each sync that changed something: auto, always, "
        "aggressive or off",
    )
    stale_worktree_timeout: float = option(
        0.0, env="*_STALE_WORKTREE_TIMEOUT", parse=parse_duration,
        help="pull: how long to keep a worktree after it stops being current",
    )
    touch_file: str = option(
        "", env="*_TOUCH_FILE",
        help="pull: file touched after each sync, absolute or relative to --root",
    )
    exechook_command: str = option(
        "", env="*_EXECHOOK_COMMAND",
        help="pull: command run (no arguments, cwd the worktree, $GITSYNC_HASH set) after "
        "each new hash",
    )
    exechook_timeout: float = option(30.0, env="*_EXECHOOK_TIMEOUT", parse=parse_duration,
                                     help="timeout of --exechook-command")
    exechook_backoff: float = option(3.0, env="*_EXECHOOK_BACKOFF", parse=parse_duration,
                                     help="wait before retrying a failed --exechook-command")
    webhook_url: str = option(
        "", env="*_WEBHOOK_URL",
        help="pull: URL called after each new hash, with header Gitsync-Hash",
    )
    webhook_method: str = option("POST", env="*_WEBHOOK_METHOD",
                                 help="HTTP method of --webhook-url")
    webhook_success_status: int = option(
        200, env="*_WEBHOOK_SUCCESS_STATUS", parse=parse_int,
        help="status that means the webhook succeeded; 0: fire and forget",
    )
    webhook_timeout: float = option(1.0, env="*_WEBHOOK_TIMEOUT", parse=parse_duration,
                                    help="timeout of --webhook-url")
    webhook_backoff: float = option(3.0, env="*_WEBHOOK_BACKOFF", parse=parse_duration,
                                    help="wait before retrying a failed --webhook-url")
    username: str = option("", env="*_USERNAME", help="user name for HTTP(S) authentication")
    password: str = option(
        "", env="*_PASSWORD", secret=True,
        help="password or token for HTTP(S) (prefer --password-file or the variable)",
    )
    password_file: str = option(
        "", env="*_PASSWORD_FILE",
        help="file holding the password or token; read at each sync, so a rotated Secret "
        "is picked up",
    )
    use_ssh: bool = option(False, env="*_SSH", parse=parse_bool, flag="--ssh",
                           help="use SSH (also implied by an ssh:// or user@host:path --repo)")
    ssh_key_file: str = option("/etc/git-secret/ssh", env="*_SSH_KEY_FILE",
                               help="SSH private key, for an ssh:// or user@host:path --repo")
    ssh_known_hosts: bool = option(True, env="*_SSH_KNOWN_HOSTS", parse=parse_bool,
                                   help="check the SSH host key against --ssh-known-hosts-file")
    ssh_known_hosts_file: str = option(
        "/etc/git-secret/known_hosts", env="*_SSH_KNOWN_HOSTS_FILE",
        help="known_hosts file for SSH",
    )
    http_bind: tuple[str, int] | None = option(
        ("0.0.0.0", 2020), env="*_HTTP_BIND", parse=parse_bind, metavar="HOST:PORT",
        help="admin endpoint (/healthz, /readyz, /metrics); empty turns it off",
    )
    http_metrics: bool = option(True, env="*_HTTP_METRICS", parse=parse_bool,
                                help="serve /metrics on --http-bind")
    verbose: int = option(0, env="*_VERBOSE", parse=parse_int, aliases=("-v",),
                          help="git-sync's verbosity: 0-4 is info, 5 and up is debug")
    # ---- push mode --------------------------------------------------------------------------
    push_dir: str = option("", env="*_PUSH_DIR",
                           help="push: the directory the main container writes (required)")
    branch: str = option("main", env="*_BRANCH", help="push: the branch to push to")
    debounce: float = option(
        2.0, env="*_DEBOUNCE", parse=parse_duration,
        help="push: commit only after writes have been quiet this long",
    )
    debounce_max: float = option(
        60.0, env="*_DEBOUNCE_MAX", parse=parse_duration,
        help="push: commit after this long even if writes never settle",
    )
    watch: str = option(
        "auto", env="*_WATCH", parse=parse_choice("auto", "inotify", "poll"),
        help="push: how to notice writes: inotify, poll, or auto (inotify, else poll)",
    )
    poll_interval: float = option(1.0, env="*_POLL_INTERVAL", parse=parse_duration,
                                  help="push: scan interval when polling")
    max_file_size: int = option(
        50 * 1000**2, env="*_MAX_FILE_SIZE", parse=parse_size,
        help="push: files larger than this are refused (logged and counted)",
    )
    author_name: str = option("gitsync", env="*_AUTHOR_NAME", help="push: commit author name")
    author_email: str = option("gitsync@localhost", env="*_AUTHOR_EMAIL",
                               help="push: commit author e-mail")
    committer_name: str = option("", env="*_COMMITTER_NAME",
                                 help="push: committer name (default: the author's)")
    committer_email: str = option("", env="*_COMMITTER_EMAIL",
                                  help="push: committer e-mail (default: the author's)")
    commit_message: str = option(
        "gitsync: {count} file(s) changed", env="*_COMMIT_MESSAGE",
        help="push: message template; {count}, {added}, {modified}, {deleted}, {files}, "
        "{time} and {hostname} are filled in",
    )
    conflict_branch_prefix: str = option(
        "gitsync/conflict-", env="*_CONFLICT_BRANCH_PREFIX",
        help="push: on a conflict the local state is pushed to this prefix + UTC time",
    )
    # ---- both -------------------------------------------------------------------------------
    ready_max_age: float = option(
        0.0, env="*_READY_MAX_AGE", parse=parse_duration,
        help="/readyz fails when the last successful sync is older than this; "
        "0: 3 x --period + --sync-timeout",
    )
    log_format: logs.LogFormat = option("text", env="*_LOG_FORMAT", parse=logs.parse_format,
                                        help="log format: text or json")
    log_level: str = option("info", env="*_LOG_LEVEL", parse=logs.parse_level,
                            help="log level: debug, info, warning or error")
    shutdown_timeout: float = option(
        DEFAULT_SHUTDOWN_TIMEOUT, env="*_SHUTDOWN_TIMEOUT", parse=parse_duration,
        help="after SIGTERM, how long a last push (push mode) may take",
    )

    def __post_init__(self) -> None:
        def need(name: str, why: str) -> None:
            if not getattr(self, name):
                raise OptionError(f"{describe(GitSyncConfig, name)} is required {why}")

        need("repo", "")
        need("root", "")
        if self.mode == "push":
            need("push_dir", "in push mode")
            if Path(self.push_dir).resolve() == Path(self.root).resolve():
                raise OptionError("--push-dir and --root must be different directories")
            if not self.commit_message.strip():
                raise OptionError("--commit-message cannot be empty")
            try:
                self.commit_message.format(**{k: "" for k in TEMPLATE_FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise OptionError(f"--commit-message: bad template: {exc!r}") from None
        for name in ("period", "sync_timeout"):
            if getattr(self, name) < 0.01:
                raise OptionError(f"{describe(GitSyncConfig, name)} must be at least 10ms")
        if self.depth < 0:
            raise OptionError("--depth cannot be negative")
        if (self.password or self.password_file) and not self.username:
            raise OptionError("--password / --password-file need --username")
        if self.password and self.password_file:
            raise OptionError("set one of --password and --password-file, not both")
        if self.password_file and not Path(self.password_file).is_file():
            raise OptionError(f"{describe(GitSyncConfig, 'password_file')}: no such file: "
                              f"{self.password_file}")
        if self.ssh:
            for name in ("ssh_key_file", "ssh_known_hosts_file"):
                if name == "ssh_known_hosts_file" and not self.ssh_known_hosts:
                    continue
                path = getattr(self, name)
                if not Path(path).is_file():
                    raise OptionError(f"{describe(GitSyncConfig, name)}: no such file: {path} "
                                      "(needed for an SSH --repo)")

    @property
    def ssh(self) -> bool:
        return self.use_ssh or is_ssh_url(self.repo)

    @property
    def link_path(self) -> Path:
        link = Path(self.link or default_link(self.repo))
        return link if link.is_absolute() else Path(self.root) / link

    @property
    def effective_log_level(self) -> str:
        return "debug" if self.verbose >= 5 else self.log_level

    @property
    def readiness_bound(self) -> float:
        return self.ready_max_age or 3 * self.period + self.sync_timeout

    @property
    def committer(self) -> tuple[str, str]:
        return (self.committer_name or self.author_name, self.committer_email or self.author_email)


TEMPLATE_FIELDS = ("count", "added", "modified", "deleted", "files", "time", "hostname")
