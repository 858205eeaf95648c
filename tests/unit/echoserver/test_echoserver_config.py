from __future__ import annotations

import socket

import pytest

from echoserver.__main__ import main
from echoserver.config import EchoConfig, parse_name
from podkit.options import OptionError, load


def config(*argv: str, **env: str) -> EchoConfig:
    return load(EchoConfig, list(argv), env, prog="echoserver")


def test_defaults() -> None:
    c = config()
    assert c.listen == ("0.0.0.0", 8080)
    assert c.name == socket.gethostname()
    assert (c.log_level, c.log_format, c.access_log) == ("info", "text", False)


def test_env_names_and_flag_precedence() -> None:
    c = config(
        "--name",
        "server2",
        ECHO_NAME="from-env",
        ECHO_LISTEN="127.0.0.1:9000",
        ECHO_LOG_LEVEL="warn",
        ECHO_LOG_FORMAT="json",
        ECHO_ACCESS_LOG="yes",
    )
    assert c.name == "server2" and c.listen == ("127.0.0.1", 9000)
    assert (c.log_level, c.log_format, c.access_log) == ("warning", "json", True)
    assert config("--access-log").access_log is True
    assert config("--listen", ":8081").listen == ("0.0.0.0", 8081)


@pytest.mark.parametrize("text", ["", "  ", "two\nlines", "tab\there"])
def test_name_must_be_printable(text: str) -> None:
    with pytest.raises(OptionError):
        parse_name(text)


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        pytest.param(["--listen", "nowhere"], {}, "--listen / ECHO_LISTEN", id="listen"),
        pytest.param([], {"ECHO_LISTEN": "0.0.0.0:70000"}, "--listen / ECHO_LISTEN", id="port"),
        pytest.param([], {"ECHO_NAME": ""}, "--name / ECHO_NAME", id="empty-name"),
        pytest.param(["--log-level", "loud"], {}, "--log-level / ECHO_LOG_LEVEL", id="level"),
        pytest.param([], {"ECHO_ACCESS_LOG": "maybe"}, "--access-log / ECHO_ACCESS_LOG", id="bool"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    argv: list[str],
    env: dict[str, str],
    names: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("echoserver: invalid value ") and names in lines[0]
