"""Pull mode (git-sync v4's drop-in) against real Git servers: a remote commit appears under
--link, published atomically, over HTTP with basic auth and over SSH."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from support.gitsync_process import StartGitSync, gitsync_oneshot, http_pull_args, ssh_args
from support.gitsync_servers import HttpGitServer, SshGitServer, git, settle
from support.processes import wait_for


def test_remote_commit_appears_in_the_pod(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    first = repo.commit_files({"config.yaml": "v: 1\n"})
    hook_out = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$GITSYNC_HASH $(cat config.yaml)" >> {hook_out}\n')
    hook.chmod(0o755)
    proc = gitsync(*http_pull_args(http_server, password_file, tmp_path,
                                   "--exechook-command", str(hook)))
    link = tmp_path / "pulled" / "current"
    wait_for(lambda: (link / "config.yaml").read_text() == "v: 1\n", what="first revision")
    assert os.readlink(link) == f".worktrees/{first}"  # git-sync's layout, relative link
    second = repo.commit_files({"config.yaml": "v: 2\n", "new.txt": "n"})
    wait_for(lambda: (link / "config.yaml").read_text() == "v: 2\n", what="second revision")
    assert os.readlink(link) == f".worktrees/{second}"
    wait_for(lambda: os.listdir(tmp_path / "pulled" / ".worktrees") == [second],
             what="the old worktree cleaned")
    wait_for(lambda: f"{second} v: 2" in hook_out.read_text(), what="exechook for the hash")
    wait_for(lambda: proc.ready() == 200, what="ready")
    assert proc.metric("git_sync_count_total", status="success") >= 2
    assert proc.metric("gitsync_last_success_timestamp_seconds") > 0


def test_pull_over_ssh_checks_the_host_key(
    ssh_server: SshGitServer, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = ssh_server.repo()
    repo.commit_files({"a.txt": "over ssh"})
    root = tmp_path / "pulled"
    done = gitsync_oneshot(["--repo", ssh_server.url("repo.git"), "--root", str(root),
                            "--one-time", *ssh_args(ssh_server)])
    assert done.returncode == 0, done.stderr
    assert (root / "repo" / "a.txt").read_text() == "over ssh"  # --link defaults to the leaf
    # A known_hosts file that does not know this host: refused, and it says why.
    other = tmp_path / "other_known_hosts"
    other.write_text(ssh_server.known_hosts.read_text().replace("127.0.0.1", "127.0.0.2"))
    done = gitsync_oneshot(["--repo", ssh_server.url("repo.git"), "--root", str(tmp_path / "x"),
                            "--one-time", "--ssh-key-file", str(ssh_server.client_key),
                            "--ssh-known-hosts-file", str(other)])
    assert done.returncode == 1
    assert "Host key verification failed" in done.stderr and "(auth" in done.stderr


def test_one_time_wrong_password_fails_clearly(
    http_server: HttpGitServer, tmp_path: Path
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    secret = "not-the-Right-0ne"
    done = gitsync_oneshot(
        ["--repo", http_server.url("repo.git"), "--root", str(tmp_path / "r"), "--one-time",
         "--username", http_server.user],
        env={"GITSYNC_PASSWORD": secret},
    )
    assert done.returncode == 1
    assert "Authentication failed" in done.stderr and "(auth" in done.stderr
    assert secret not in done.stderr + done.stdout


def test_server_down_then_back(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "1"})
    proc = gitsync(*http_pull_args(http_server, password_file, tmp_path,
                                   "--max-failures", "-1"))
    link = tmp_path / "pulled" / "current"
    wait_for(lambda: (link / "a.txt").read_text() == "1", what="first revision")
    http_server.stop()
    wait_for(lambda: proc.metric("gitsync_failures_total", kind="network") >= 1,
             what="network failures counted")
    assert (link / "a.txt").read_text() == "1"  # still served while the remote is down
    http_server.start()
    repo.commit_files({"a.txt": "2"})
    wait_for(lambda: (link / "a.txt").read_text() == "2", what="synced after the restart")


def test_link_never_shows_a_mixed_tree(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    """Commits land every 100 ms, each writing its number into every file; readers that
    resolve the link once and read the whole tree must always see one number."""
    repo = http_server.repo()
    names = [f"f{i}.txt" for i in range(20)]
    repo.commit_files(dict.fromkeys(names, "0"))
    gitsync(*http_pull_args(http_server, password_file, tmp_path, "--period", "20ms",
                            "--stale-worktree-timeout", "2s"))
    link = tmp_path / "pulled" / "current"
    wait_for(lambda: (link / "f0.txt").exists(), what="first revision")
    stop = threading.Event()
    mixed: list[set[str]] = []
    seen: set[str] = set()
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            tree = os.path.realpath(link)
            try:
                values = {Path(tree, name).read_text() for name in names}
            except FileNotFoundError:
                continue  # that worktree was removed after its stale timeout: not a mix
            reads[0] += 1
            seen.update(values)
            if len(values) != 1:
                mixed.append(values)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    scratch = tmp_path / "writer"
    git("clone", "-q", str(repo.path), str(scratch))
    try:
        for n in range(1, 31):
            for name in names:
                (scratch / name).write_text(str(n))
            git("commit", "-qam", f"rev {n}", cwd=scratch)
            git("push", "-q", "origin", "HEAD:main", cwd=scratch)
            time.sleep(0.1)
        wait_for(lambda: (link / "f0.txt").read_text() == "30", what="the last revision")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not mixed, mixed[:3]
    assert len(seen) > 3 and reads[0] > 100  # the readers did see the tree change under them


def test_kill_9_mid_sync_then_restart_publishes_a_whole_tree(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    """Killed six times at random moments while new revisions land (each rewrites 2 000
    files, so a fetch and a checkout take a while): the next start finds the remote's last
    revision, published whole, and a repository that git fsck accepts."""
    repo = http_server.repo()
    names = [f"d{i // 100:02}/f{i % 100:02}.txt" for i in range(2000)]
    repo.commit_files(dict.fromkeys(names, "0"))
    args = http_pull_args(http_server, password_file, tmp_path, "--period", "50ms",
                          "--max-failures", "-1")
    link = tmp_path / "pulled" / "current"
    rng = random.Random(7)
    last = ""
    for round_ in range(1, 7):
        proc = gitsync(*args, name=f"round{round_}")
        last = repo.commit_files(dict.fromkeys(names, str(round_)), message=f"rev {round_}")
        settle(rng.uniform(0.05, 0.6))  # in a fetch, a checkout, the swap, or between syncs
        proc.stop(signal.SIGKILL)
    final = gitsync(*args, name="final")
    wait_for(lambda: os.readlink(link) == f".worktrees/{last}", timeout=30,
             what="the last revision published")
    tree = Path(os.path.realpath(link))
    assert {(tree / name).read_text() for name in names} == {"6"}  # whole, one revision
    status = git("status", "--porcelain", cwd=tree)
    assert status == "", status  # the worktree is exactly its commit
    assert git("rev-parse", "HEAD", cwd=tree).strip() == last
    git("fsck", "--no-progress", "--connectivity-only", cwd=tmp_path / "pulled")
    wait_for(lambda: final.ready() == 200, what="ready")
    assert final.stop() == 0


def test_ssh_key_not_authorized_is_a_clear_auth_error(
    ssh_server: SshGitServer, tmp_path: Path
) -> None:
    repo = ssh_server.repo()
    repo.commit_files({"a.txt": "a"})
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    done = gitsync_oneshot(["--repo", ssh_server.url("repo.git"), "--root", str(tmp_path / "r"),
                            "--one-time", "--ssh-key-file", str(stranger),
                            "--ssh-known-hosts-file", str(ssh_server.known_hosts)])
    assert done.returncode == 1
    assert "Permission denied (publickey)" in done.stderr and "(auth" in done.stderr
    private = stranger.read_text().splitlines()[1]  # a line of the key itself
    assert private not in done.stderr + done.stdout
