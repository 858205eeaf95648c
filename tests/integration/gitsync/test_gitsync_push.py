"""Push mode against real Git servers: what the main container writes ends up on the remote
branch, and the hard cases (remote moved, conflict, rejected, server down, wrong password,
kill -9, 10 000 files) lose nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

from support.gitsync_process import StartGitSync, http_push_args, ssh_args
from support.gitsync_servers import HttpGitServer, SshGitServer, git, settle
from support.processes import wait_for


def test_written_file_reaches_the_remote_branch(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"old.txt": "old", "moved.txt": "moving", "gone.txt": "bye"})
    work = tmp_path / "work"
    proc = gitsync(*http_push_args(
        http_server, password_file, tmp_path, "--max-file-size", "1k",
        "--author-name", "Pod Writer", "--author-email", "pod@example.com",
        "--committer-name", "Sync Bot", "--committer-email", "bot@example.com",
        "--commit-message", "sync {count}: +{added} ~{modified} -{deleted}",
    ))
    # First start: the remote's files join the directory; nothing is deleted.
    wait_for(lambda: (work / "old.txt").exists(), what="seeded work tree")
    (work / "sub").mkdir()
    (work / "sub" / "new.txt").write_text("written by the main container")
    (work / "old.txt").write_text("edited")
    (work / "gone.txt").unlink()
    (work / "moved.txt").rename(work / "sub" / "renamed.txt")
    (work / ".gitignore").write_text("*.tmp\n")
    (work / "scratch.tmp").write_text("ignored")
    (work / "huge.bin").write_bytes(b"x" * 4096)
    wait_for(lambda: repo.read("sub/new.txt") == "written by the main container",
             what="the new file on the remote")
    wait_for(lambda: repo.read("old.txt") == "edited", what="the edit on the remote")
    files = repo.files()
    assert "gone.txt" not in files and "moved.txt" not in files
    assert "sub/renamed.txt" in files and ".gitignore" in files
    assert "scratch.tmp" not in files and "huge.bin" not in files
    author = git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", "main", cwd=repo.path).strip()
    assert author.startswith("Pod Writer <pod@example.com>|Sync Bot <bot@example.com>|sync ")
    wait_for(lambda: proc.metric("gitsync_refused_files_total") == 1, what="refused metric")
    assert "huge.bin" in proc.log() and "--max-file-size" in proc.log()
    wait_for(lambda: proc.metric("gitsync_pending_changes") == 0, what="nothing pending")
    assert proc.metric("gitsync_pushed_bytes_total") > 0
    assert proc.metric("gitsync_last_success_timestamp_seconds") > 0
    assert proc.ready() == 200
    assert proc.stop() == 0


def test_push_over_ssh(ssh_server: SshGitServer, tmp_path: Path, gitsync: StartGitSync) -> None:
    repo = ssh_server.repo()
    work = tmp_path / "work"
    work.mkdir()
    (work / "hello.txt").write_text("over ssh")
    gitsync("--mode", "push", "--repo", ssh_server.url("repo.git"),
            "--root", str(tmp_path / "state"), "--push-dir", str(work),
            "--debounce", "200ms", *ssh_args(ssh_server))
    wait_for(lambda: repo.read("hello.txt") == "over ssh", what="file pushed over SSH")


def test_remote_moved_local_change_goes_on_top(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    work = tmp_path / "work"
    # A long period: the remote's commit is only seen when the local change is pushed.
    gitsync(*http_push_args(http_server, password_file, tmp_path, "--period", "1m"))
    wait_for(lambda: (work / "a.txt").exists(), what="seeded")
    repo.commit_files({"remote.txt": "from elsewhere"})
    (work / "local.txt").write_text("from the pod")
    wait_for(lambda: repo.read("local.txt") == "from the pod", what="local change pushed")
    assert repo.read("remote.txt") == "from elsewhere"
    wait_for(lambda: (work / "remote.txt").exists(), what="remote file in the pod")
    history = git("log", "--format=%s", "main", cwd=repo.path).splitlines()
    assert history[1] == "remote change"  # linear: ours on top of theirs


def test_conflict_goes_to_a_side_branch(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"shared.txt": "base\n", "other.txt": "o"})
    work = tmp_path / "work"
    proc = gitsync(*http_push_args(http_server, password_file, tmp_path, "--period", "1m"))
    wait_for(lambda: (work / "shared.txt").exists(), what="seeded")
    repo.commit_files({"shared.txt": "remote side\n"})
    (work / "shared.txt").write_text("local side\n")
    (work / "mine.txt").write_text("no conflict here")
    wait_for(lambda: any(b.startswith("gitsync/conflict-") for b in repo.branches()),
             what="a conflict branch")
    side = next(b for b in repo.branches() if b.startswith("gitsync/conflict-"))
    assert repo.read("shared.txt", side) == "local side\n"  # ours, kept whole
    wait_for(lambda: repo.read("mine.txt") == "no conflict here", what="the rest pushed")
    assert repo.read("shared.txt") == "remote side\n"  # theirs, kept on the branch
    wait_for(lambda: (work / "shared.txt").read_text() == "remote side\n", what="pod follows")
    assert proc.metric("gitsync_failures_total", kind="conflict") == 1
    assert proc.metric("gitsync_conflict_branches_total") == 1
    assert side in proc.log()


def test_rejected_push_is_counted_and_retried(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    repo.reject_pushes("branch is frozen by policy")
    work = tmp_path / "work"
    proc = gitsync(*http_push_args(http_server, password_file, tmp_path, "--period", "300ms"))
    wait_for(lambda: (work / "a.txt").exists(), what="seeded")
    (work / "b.txt").write_text("b")
    wait_for(lambda: proc.metric("gitsync_failures_total", kind="rejected") >= 1,
             what="rejected push counted")
    assert proc.metric("gitsync_pending_changes") == 1
    assert "frozen by policy" in proc.log()
    repo.reject_pushes(None)
    wait_for(lambda: repo.read("b.txt") == "b", what="pushed once the remote accepts")


def test_server_down_then_back(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    work = tmp_path / "work"
    proc = gitsync(*http_push_args(http_server, password_file, tmp_path, "--period", "300ms"))
    wait_for(lambda: (work / "a.txt").exists(), what="seeded")
    http_server.stop()
    (work / "while-down.txt").write_text("kept")
    wait_for(lambda: proc.metric("gitsync_failures_total", kind="network") >= 1,
             what="network failure counted")
    wait_for(lambda: proc.metric("gitsync_pending_changes") == 1, what="pending while down")
    http_server.start()
    wait_for(lambda: repo.read("while-down.txt") == "kept", what="pushed after the restart")
    wait_for(lambda: proc.metric("gitsync_pending_changes") == 0, what="nothing pending")


def test_wrong_password_is_a_clear_auth_error_without_the_secret(
    http_server: HttpGitServer, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    wrong = "Wr0ng-but-s3cret-value"
    bad = tmp_path / "bad-password"
    bad.write_text(wrong)
    proc = gitsync(*http_push_args(http_server, bad, tmp_path, "--period", "300ms"))
    wait_for(lambda: proc.metric("gitsync_failures_total", kind="auth") >= 1, what="auth")
    assert "Authentication failed" in proc.log()
    assert wrong not in proc.log() and http_server.password not in proc.log()
    assert wrong not in proc.metrics()
    assert proc.ready() == 503


def test_sigterm_pushes_what_is_pending(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"a.txt": "a"})
    work = tmp_path / "work"
    proc = gitsync(*http_push_args(http_server, password_file, tmp_path, "--debounce", "1m"))
    wait_for(lambda: (work / "a.txt").exists(), what="seeded")
    wait_for(lambda: proc.ready() == 200, what="ready")
    (work / "last-words.txt").write_text("before shutdown")
    settle(0.3)  # let inotify report it
    assert proc.stop() == 0
    assert repo.read("last-words.txt") == "before shutdown"


def test_kill_9_at_any_moment_loses_nothing(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    repo.commit_files({"seed.txt": "s"})
    work = tmp_path / "work"
    args = http_push_args(http_server, password_file, tmp_path, "--debounce", "0s")
    rng = random.Random(11)
    written: list[str] = []
    for round_ in range(6):
        proc = gitsync(*args, name=f"round{round_}")
        for i in range(20):
            name = f"r{round_}/f{i}.txt"
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(f"{round_}-{i}" * 50)
            written.append(name)
        settle(rng.uniform(0.05, 0.6))  # somewhere in a sync, or between syncs
        proc.stop(signal.SIGKILL)
    last = gitsync(*args, name="last")
    wait_for(lambda: set(written) <= set(repo.files()), timeout=30, what="every file pushed")
    wait_for(lambda: last.metric("gitsync_pending_changes") == 0, what="nothing pending")
    repo.fsck()
    env = {**os.environ, "GIT_DIR": str(tmp_path / "state" / "push.git")}
    subprocess.run(["git", "fsck", "--no-progress"], env=env, check=True, capture_output=True)
    for name in written:
        assert repo.read(name) == (work / name).read_text()


def test_ten_thousand_files_in_a_first_commit(
    http_server: HttpGitServer, password_file: Path, tmp_path: Path, gitsync: StartGitSync
) -> None:
    repo = http_server.repo()
    work = tmp_path / "work"
    for d in range(100):
        (work / f"d{d:02}").mkdir(parents=True)
        for f in range(100):
            (work / f"d{d:02}" / f"f{f:02}.txt").write_text(f"{d}/{f}\n")
    proc = gitsync(*http_push_args(http_server, password_file, tmp_path))
    wait_for(lambda: len(repo.files()) == 10_000, timeout=60, what="10 000 files on the remote")
    assert git("rev-list", "--count", "main", cwd=repo.path).strip() == "1"
    assert repo.read("d42/f17.txt") == "42/17\n"
    wait_for(lambda: proc.metric("gitsync_pending_changes") == 0, what="nothing pending")
