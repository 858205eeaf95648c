from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.config import GitSyncConfig, default_link, is_ssh_url, parse_bind, parse_size
from podkit.options import OptionError, load

BASE = ["--repo", "https://example.com/org/site.git", "--root", "/tmp/gitsync-root"]


def config(*argv: str, **env: str) -> GitSyncConfig:
    return load(GitSyncConfig, list(argv), env, prog="gitsync")


def test_git_sync_defaults() -> None:
    c = config(*BASE)
    assert c.mode == "pull" and c.ref == "HEAD" and c.period == 10.0
    assert c.sync_timeout == 120.0 and c.depth == 1 and c.max_failures == 0
    assert c.link_path == Path("/tmp/gitsync-root/site")  # the leaf of --repo
    assert c.readiness_bound == 3 * 10.0 + 120.0
    assert c.webhook_method == "POST" and c.webhook_success_status == 200


def test_gitsync_env_names_and_flag_precedence() -> None:
    c = config(
        "--period", "5s",
        GITSYNC_REPO="https://h/r", GITSYNC_ROOT="/r", GITSYNC_PERIOD="1m",
        GITSYNC_ONE_TIME="true", GITSYNC_LINK="/abs/link", GITSYNC_MAX_FAILURES="-1",
        GITSYNC_DEPTH="0", GITSYNC_REF="v1.2",
    )
    assert c.period == 5.0 and c.one_time and c.link_path == Path("/abs/link")
    assert c.max_failures == -1 and c.depth == 0 and c.ref == "v1.2"


def test_push_mode_needs_a_push_dir(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        config(*BASE, "--mode", "push")
    assert exit_.value.code == 2
    assert "--push-dir / GITSYNC_PUSH_DIR is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--root", "/r"], "--repo / GITSYNC_REPO is required", id="no-repo"),
        pytest.param([*BASE, "--password", "pw"], "need --username", id="password-alone"),
        pytest.param([*BASE, "--period", "1ms"], "at least 10ms", id="period"),
        pytest.param([*BASE, "--mode", "push", "--push-dir", "/p", "--commit-message",
                      "{nope}"], "bad template", id="template"),
        pytest.param([*BASE, "--max-file-size", "lots"], "expected a size", id="size"),
    ],
)
def test_bad_options_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        config(*argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_password_never_in_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config(*BASE, GITSYNC_PASSWORD="hunter2-secret", GITSYNC_PASSWORD_FILE="/nope")
    assert "hunter2-secret" not in capsys.readouterr().err


def test_ssh_repo_needs_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config("--repo", "git@example.com:org/repo.git", "--root", "/r",
               "--ssh-key-file", str(tmp_path / "missing"))
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "want"),
    [("100", 100), ("1k", 1000), ("50M", 50_000_000), ("2Mi", 2 * 1024**2), ("1GiB", 1024**3)],
)
def test_sizes(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("ssh://git@h/r.git", True), ("git@github.com:org/r.git", True),
        ("https://h/r.git", False), ("/srv/git/r.git", False), ("file:///srv/r", False),
    ],
)
def test_ssh_urls(url: str, ssh: bool) -> None:
    assert is_ssh_url(url) is ssh


def test_default_link_and_bind() -> None:
    assert default_link("git@github.com:kubernetes/git-sync.git") == "git-sync"
    assert default_link("https://h/a/b/") == "b"
    assert parse_bind(":1234") == ("0.0.0.0", 1234)
    assert parse_bind("") is None
    with pytest.raises(OptionError):
        parse_bind("nope")


def test_ssh_flag_is_accepted_as_in_git_sync(tmp_path: Path) -> None:
    key, hosts = tmp_path / "key", tmp_path / "known_hosts"
    key.write_text("k")
    hosts.write_text("h")
    c = config("--repo", "https://h/r", "--root", "/r", "--ssh", "--ssh-key-file", str(key),
               "--ssh-known-hosts-file", str(hosts))
    assert c.ssh


def test_unsupported_git_sync_flag_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        config(*BASE, "--submodules", "off")
    assert exit_.value.code == 2
    assert "--submodules" in capsys.readouterr().err
