from __future__ import annotations

from dataclasses import dataclass

import pytest

from podkit.options import (
    OptionError,
    describe,
    env_table,
    load,
    mask_credentials,
    option,
    parse_bool,
    parse_duration,
    parse_host_port,
)


@dataclass(frozen=True)
class Sample:
    listen: tuple[str, int] = option(
        ("0.0.0.0", 80), env="S_LISTEN", parse=parse_host_port(), help="where"
    )
    verbose: bool = option(
        False, env="S_VERBOSE", parse=parse_bool, aliases=("-v.erbose",), help="more"
    )
    token: str = option("", env="S_TOKEN", secret=True, help="secret")
    wait: float = option(1.0, env="S_WAIT", parse=parse_duration, help="how long")


def test_flags_env_defaults() -> None:
    assert load(Sample, [], {}, prog="s") == Sample()
    c = load(
        Sample, ["--verbose", "--wait", "2m"], {"S_LISTEN": ":8080", "S_VERBOSE": "false"}, prog="s"
    )
    assert c.listen == ("0.0.0.0", 8080) and c.verbose is True and c.wait == 120
    assert load(Sample, ["-v.erbose=no"], {}, prog="s").verbose is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15", 15), ("15s", 15), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200), ("0.25s", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "15x", "s", "-1", "1m30", "1.2.3s"])
def test_duration_errors(text: str) -> None:
    with pytest.raises(OptionError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [("127.0.0.1:9", ("127.0.0.1", 9)), (":9", ("0.0.0.0", 9)), ("[::1]:9", ("::1", 9))],
)
def test_host_port(text: str, want: tuple[str, int]) -> None:
    assert parse_host_port()(text) == want


@pytest.mark.parametrize("text", ["9", "host", "h:0", "h:70000", "h:x"])
def test_host_port_errors(text: str) -> None:
    with pytest.raises(OptionError):
        parse_host_port()(text)


def test_bad_secret_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    @dataclass(frozen=True)
    class WithSecretNumber:
        pin: int = option(0, env="PIN", parse=int, secret=True, help="pin")

    with pytest.raises(SystemExit):
        load(WithSecretNumber, [], {"PIN": "12ab34"}, prog="s")
    err = capsys.readouterr().err
    assert "12ab34" not in err and "<redacted>" in err and "--pin / PIN" in err


def test_a_password_in_a_bad_url_is_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    def parse_url(text: str) -> str:
        raise OptionError(f"cannot read {text}")

    @dataclass(frozen=True)
    class WithUrl:
        url: str = option("", env="URL", parse=parse_url, help="where")

    with pytest.raises(SystemExit):
        load(WithUrl, ["--url", "redis://user:hunter2@[::1"], {}, prog="s")
    err = capsys.readouterr().err
    assert "hunter2" not in err and "redis://user:<redacted>@[::1" in err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis://:pw@h:1", "redis://:<redacted>@h:1"),
        ("redis://u:p@ss@h:1/0", "redis://u:<redacted>@h:1/0"),
        ("['http://u:p@a', 'http://b']", "['http://u:<redacted>@a', 'http://b']"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_describe_and_env_table() -> None:
    assert describe(Sample, "wait") == "--wait / S_WAIT"
    rows = {flag: (env, default) for flag, env, default, _ in env_table(Sample)}
    assert rows["--token"] == ("S_TOKEN", "")
    assert rows["--wait"] == ("S_WAIT", "1.0")
