from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.auth import Auth
from gitsync.git import GitError, classify, pushed_bytes

# Recorded from git 2.39 / OpenSSH 9.2 against the integration tier's servers.
CASES = [
    pytest.param("fatal: Authentication failed for 'http://127.0.0.1:1/git/r.git/'", "auth",
                 id="http-401"),
    pytest.param("fatal: could not read Username for 'https://h': terminal prompts disabled",
                 "auth", id="no-credentials"),
    pytest.param("Host key verification failed.\nfatal: Could not read from remote repository.",
                 "auth", id="host-key"),
    pytest.param("git@h: Permission denied (publickey).\nfatal: Could not read from remote",
                 "auth", id="ssh-key"),
    pytest.param("fatal: unable to access 'http://127.0.0.1:1/r/': Failed to connect to "
                 "127.0.0.1 port 1 after 0 ms: Couldn't connect to server", "network",
                 id="http-down"),
    pytest.param("ssh: connect to host 127.0.0.1 port 1: Connection refused\n"
                 "fatal: Could not read from remote repository.", "network", id="ssh-down"),
    pytest.param(" ! [remote rejected] HEAD -> main (pre-receive hook declined)\n"
                 "error: failed to push some refs to 'x'", "rejected", id="hook"),
    pytest.param("fatal: not a git repository", "other", id="other"),
]


@pytest.mark.parametrize(("stderr", "kind"), CASES)
def test_classify(stderr: str, kind: str) -> None:
    assert classify(stderr) == kind


def test_error_message_keeps_the_servers_reason() -> None:
    stderr = ("remote: branch is frozen\nTo http://h/r.git\n ! [remote rejected] HEAD -> main "
              "(pre-receive hook declined)\nerror: failed to push some refs to 'http://h/r.git'")
    error = GitError("push", 1, stderr)
    assert error.kind == "rejected"
    assert "remote: branch is frozen" in str(error)


def test_pushed_bytes() -> None:
    progress = ("Writing objects:  50% (1/2)\rWriting objects: 100% (3/3), 1.50 KiB | "
                "1.50 MiB/s, done.\nTotal 3 (delta 0)")
    assert pushed_bytes(progress) == 1536
    assert pushed_bytes("Writing objects: 100% (3/3), 250 bytes | 250.00 KiB/s, done.") == 250
    assert pushed_bytes("Everything up-to-date") == 0


def test_credentials_go_by_environment_never_by_config_value() -> None:
    auth = Auth(username="bot", password="t0ken-value")
    env = auth.env()
    assert env["GITSYNC_AUTH_PASSWORD"] == "t0ken-value"
    config_values = [v for k, v in env.items() if k.startswith("GIT_CONFIG_VALUE_")]
    assert config_values and not any("t0ken-value" in v for v in config_values)
    assert auth.redact("fatal: http://bot:t0ken-value@h/r and t0ken-value") == (
        "fatal: http://bot:<redacted>@h/r and <redacted>")


def test_password_file_is_read_each_time(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("first\n")
    auth = Auth(username="u", password_file=str(path))
    assert auth.env()["GITSYNC_AUTH_PASSWORD"] == "first"
    path.write_text("rotated\n")
    assert auth.env()["GITSYNC_AUTH_PASSWORD"] == "rotated"
