"""Options: flags and LOGAGENT_* variables, Downward API metadata, clear errors (exit 2)."""

from __future__ import annotations

import pytest

from logagent.config import LogagentConfig, parse_size
from podkit.options import OptionError, load


def config(*argv: str, **env: str) -> LogagentConfig:
    return load(LogagentConfig, list(argv), env, prog="logagent")


def test_minimal_form() -> None:
    c = config("--path", "/var/log/*.log", "--path", "/x.log", "--state-dir", "/tmp/s")
    assert c.paths == ("/var/log/*.log", "/x.log")
    assert c.outputs == ("stdout",) and c.stdout_format == "raw" and c.parser == "raw"
    assert c.metadata == {}


def test_environment_and_downward_api() -> None:
    c = config(
        LOGAGENT_PATHS="/a.log,/b/*.log",
        LOGAGENT_STATE_DIR="/s",
        LOGAGENT_OUTPUTS="stdout,syslog",
        LOGAGENT_SYSLOG_ADDRESS="logs:6514",
        POD_NAME="web-1",
        POD_NAMESPACE="shop",
        CONTAINER_NAME="app",
    )
    assert c.paths == ("/a.log", "/b/*.log")
    assert c.outputs == ("stdout", "syslog")
    assert c.syslog_address == ("logs", 6514)
    assert c.metadata == {"pod": "web-1", "namespace": "shop", "container": "app"}
    assert c.syslog_hostname == "web-1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--state-dir", "/s"], "--path / LOGAGENT_PATHS: at least one", id="no-path"),
        pytest.param(["--path", "/a"], "--state-dir / LOGAGENT_STATE_DIR is required",
                     id="no-state-dir"),
        pytest.param(["--path", "rel.log", "--state-dir", "/s"], "absolute", id="relative"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--output", "kafka"], "stdout, syslog",
                     id="unknown-output"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--parser", "regex"], "needs --regex",
                     id="regex-missing"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--regex", "(x"],
                     "not a regular expression", id="bad-regex"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--regex", "x+"], "named group",
                     id="regex-without-groups"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--buffer-bytes", "1k"],
                     "--buffer-bytes must hold", id="tiny-buffer"),
        pytest.param(["--path", "/a", "--state-dir", "/s", "--syslog-tls-ca-file", "/nope"],
                     "no such file", id="missing-ca"),
    ],
)
def test_bad_config_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        config(*argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "size"),
    [("65536", 65536), ("64k", 65536), ("64KiB", 65536), ("8m", 8 << 20), ("1g", 1 << 30)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_rejects() -> None:
    with pytest.raises(OptionError):
        parse_size("lots")
