"""The ambassador's configuration: nginx's `server` syntax, flags and AMBASSADOR_* variables,
and the YAML --config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambassador.config import AmbassadorConfig, ServerSpec, UpstreamGroup, load_group, parse_server
from podkit.options import OptionError, load

DEFAULTS = {
    "method": "round_robin",
    "hash_key": "ip",
    "health_path": "",
    "health_interval": 5.0,
    "health_timeout": 2.0,
    "health_rise": 2,
    "health_fall": 3,
}


def config(*argv: str, **env: str) -> AmbassadorConfig:
    return load(AmbassadorConfig, list(argv), env, prog="ambassador")


def refused(
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    env: dict[str, str] | None = None,
    one_line: bool = True,
) -> str:
    """What `ambassador` prints when it refuses to start, with exit status 2: one line."""
    with pytest.raises(SystemExit) as exc:
        config(*argv, **(env or {}))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ambassador: "), err
    if one_line:
        assert err.count("\n") == 1, err
    return err


# -- parse_server: nginx's `server` line ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("http://a:8080", ServerSpec("http://a:8080"), id="defaults as nginx"),
        pytest.param("a:8080", ServerSpec("http://a:8080"), id="bare host:port"),
        pytest.param("10.0.0.1", ServerSpec("http://10.0.0.1"), id="bare host, port 80"),
        pytest.param("[::1]:81", ServerSpec("http://[::1]:81"), id="ipv6"),
        pytest.param(
            "a:1 weight=3 max_fails=2 fail_timeout=30s backup down max_conns=10",
            ServerSpec("http://a:1", 3, 2, 30.0, True, True, 10),
            id="every parameter",
        ),
        pytest.param("a:1  weight=3\tmax_fails=0", ServerSpec("http://a:1", 3, 0), id="spaces"),
        pytest.param("a:1 fail_timeout=2m", ServerSpec("http://a:1", fail_timeout=120.0), id="2m"),
        pytest.param("a:1 fail_timeout=7", ServerSpec("http://a:1", fail_timeout=7.0), id="secs"),
        pytest.param("a:1 fail_timeout=0", ServerSpec("http://a:1", fail_timeout=0.0), id="zero"),
        pytest.param("unix:/run/app.sock weight=2", ServerSpec("unix:/run/app.sock", 2), id="unix"),
    ],
)
def test_parse_server(text: str, want: ServerSpec) -> None:
    assert parse_server(text) == want


def test_server_host_and_port() -> None:
    spec = parse_server("backend.ns.svc:8080 weight=2")
    assert (spec.host, spec.port) == ("backend.ns.svc", 8080)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("a:1 wieght=3", "wieght=3", id="typo"),
        pytest.param("a:1 weight=0", "weight", id="zero weight"),
        pytest.param("a:1 weight=-2", "weight", id="negative weight"),
        pytest.param("a:1 weight=1.5", "weight", id="fractional weight"),
        pytest.param("a:1 weight=", "weight", id="empty weight"),
        pytest.param("a:1 weight", "weight", id="weight without value"),
        pytest.param("a:1 max_fails=-1", "max_fails", id="negative max_fails"),
        pytest.param("a:1 max_conns=lots", "max_conns", id="max_conns not a number"),
        pytest.param("a:1 backup=yes", "backup=yes", id="flag with a value"),
        pytest.param("a:1 route=a", "route=a", id="nginx plus only"),
        pytest.param(
            "a:1 fail_timeout=-5s",
            "fail_timeout",
            id="negative fail_timeout",
        ),
        pytest.param(
            "a:1 fail_timeout=soon",
            "fail_timeout",
            id="fail_timeout not a duration",
        ),
        pytest.param(
            "a:1 weight=²",
            "weight",
            id="unicode digit",
        ),
    ],
)
def test_parse_server_rejects_naming_the_parameter(text: str, named: str) -> None:
    with pytest.raises(OptionError) as exc:
        parse_server(text)
    message = str(exc.value)
    assert named in message
    assert "a:1" in message  # which server


@pytest.mark.parametrize("text", ["", "   ", "ftp://a:1", "a:1/path", "http://:80", "unix:x"])
def test_parse_server_rejects_bad_addresses(text: str) -> None:
    with pytest.raises(OptionError):
        parse_server(text)


# -- flags and variables ----------------------------------------------------------------------


def test_repeated_upstream_flags_keep_their_order() -> None:
    c = config(
        "--upstream",
        "http://server1:80 weight=3",
        "--upstream",
        "server2:80",
        "--upstream",
        "server3:80 backup",
    )
    assert c.upstream == (
        ServerSpec("http://server1:80", weight=3),
        ServerSpec("http://server2:80"),
        ServerSpec("http://server3:80", backup=True),
    )
    group = c.group()
    assert group.servers == c.upstream and group.method == "round_robin"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("http://a:1 weight=3\nb:2 max_fails=2\n\nc:3 backup\n", id="one per line"),
        pytest.param("http://a:1 weight=3, b:2 max_fails=2,c:3 backup", id="comma-separated"),
        pytest.param("http://a:1 weight=3\nb:2 max_fails=2, c:3 backup", id="both"),
    ],
)
def test_upstreams_variable(value: str) -> None:
    c = config(AMBASSADOR_UPSTREAMS=value)
    assert c.upstream == (
        ServerSpec("http://a:1", weight=3),
        ServerSpec("http://b:2", max_fails=2),
        ServerSpec("http://c:3", backup=True),
    )


def test_flags_win_over_the_variable() -> None:
    c = config("--upstream", "flag:1", AMBASSADOR_UPSTREAMS="env:1, env:2")
    assert c.upstream == (ServerSpec("http://flag:1"),)


def test_method_and_health_options_reach_the_group() -> None:
    c = config(
        "--upstream",
        "a:1",
        "--upstream",
        "b:1",
        "--method",
        "hash",
        "--hash-key",
        "header:X-User",
        AMBASSADOR_HEALTH_PATH="/healthz",
        AMBASSADOR_HEALTH_INTERVAL="500ms",
    )
    group = c.group()
    assert (group.method, group.hash_key) == ("hash", "header:X-User")
    assert (group.health_path, group.health_interval) == ("/healthz", 0.5)


def test_no_upstreams_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys)
    assert "no upstream servers" in err and "--upstream" in err and "AMBASSADOR_UPSTREAMS" in err


def test_all_backup_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--upstream", "a:1 backup", "--upstream", "b:1 backup")
    assert "backup" in err


def test_hash_with_backup_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "--method", "hash", env={"AMBASSADOR_UPSTREAMS": "a:1, b:1 backup"})
    assert "hash" in err and "backup" in err


@pytest.mark.parametrize(
    ("argv", "env", "source"),
    [
        pytest.param(["--upstream", "a:1 weight=0"], {}, "--upstream", id="flag"),
        pytest.param([], {"AMBASSADOR_UPSTREAMS": "a:1, b:1 wieght=2"}, "$AMBASSADOR", id="env"),
    ],
)
def test_a_bad_server_names_flag_variable_and_source(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], source: str
) -> None:
    err = refused(capsys, *argv, env=env)
    assert "--upstream / AMBASSADOR_UPSTREAMS" in err
    assert f"(from {source}" in err


def test_config_file_must_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = refused(capsys, "--config", str(tmp_path / "missing.yaml"))
    assert "--config / AMBASSADOR_CONFIG" in err and "missing.yaml" in err


def test_config_file_or_upstream_flags_not_both(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ambassador.yaml"
    path.write_text("upstreams: [a:1]\n")
    err = refused(capsys, "--config", str(path), "--upstream", "b:1")
    assert "not both" in err


# -- the YAML --config file -------------------------------------------------------------------

FULL = """\
# the ConfigMap a Kubernetes pod would mount
upstreams:
  - "http://server1:80 weight=3 max_fails=2 fail_timeout=30s"
  - server2:80
  - url: server3:80
    weight: 2
    max_conns: 100
    down: false
  - url: http://server4:80
    backup: true
    fail_timeout: 1m
method: least_conn
hash_key: cookie:session
health:
  path: /healthz
  interval: 2s
  timeout: 1s
  rise: 3
  fall: 4
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ambassador.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_config_file_with_string_and_mapping_items(tmp_path: Path) -> None:
    group = config("--config", write(tmp_path, FULL)).group()
    assert group == UpstreamGroup(
        servers=(
            ServerSpec("http://server1:80", weight=3, max_fails=2, fail_timeout=30.0),
            ServerSpec("http://server2:80"),
            ServerSpec("http://server3:80", weight=2, max_conns=100),
            ServerSpec("http://server4:80", backup=True, fail_timeout=60.0),
        ),
        method="least_conn",
        hash_key="cookie:session",
        health_path="/healthz",
        health_interval=2.0,
        health_timeout=1.0,
        health_rise=3,
        health_fall=4,
    )


def test_config_file_takes_defaults_from_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "upstreams: [a:1, b:1]\n")
    group = config("--config", path, "--method", "least_conn", "--health-path", "/up").group()
    assert (group.method, group.health_path) == ("least_conn", "/up")


def test_config_file_is_read_again_by_group(tmp_path: Path) -> None:
    # A reload calls group() again: it sees the file as it is now.
    path = write(tmp_path, "upstreams: [a:1]\n")
    c = config("--config", path)
    write(tmp_path, "upstreams: [a:1, 'b:1 weight=5']\n")
    assert c.group().servers[1] == ServerSpec("http://b:1", weight=5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("upstreams: []\n", "no upstream servers", id="empty list"),
        pytest.param("method: least_conn\n", "no upstream servers", id="no upstreams key"),
        pytest.param("upstreams: ['a:1 backup']\n", "backup", id="all backup"),
        pytest.param("upstreams: [a:1]\nupstream: [b:1]\n", "unknown keys ['upstream']", id="key"),
        pytest.param("- a:1\n- b:1\n", "expected a mapping", id="a list"),
        pytest.param("", "expected a mapping", id="empty file"),
        pytest.param("upstreams: [42]\n", "a string or a mapping with `url`", id="a number"),
        pytest.param("upstreams: [{weight: 2}]\n", "with `url`", id="mapping without url"),
        pytest.param("upstreams: [{url: 'a:1', wieght: 2}]\n", "wieght=2", id="mapping typo"),
        pytest.param("upstreams: ['a:1 weight=0']\n", "weight", id="zero weight"),
        pytest.param("upstreams: [a:1]\nmethod: random\n", "round_robin", id="method"),
        pytest.param("upstreams: [a:1]\nhash_key: url\n", "header:NAME", id="hash key"),
        pytest.param("upstreams: [a:1]\nhealth: /healthz\n", "`health`", id="health string"),
        pytest.param("upstreams: [a:1]\nhealth: {path: healthz}\n", "'/'", id="health path"),
        pytest.param("upstreams: [a:1]\nhealth: {interval: soon}\n", "soon", id="interval"),
        pytest.param("upstreams: [a:1]\nhealth: {rise: many}\n", "many", id="rise"),
    ],
)
def test_config_file_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(OptionError) as exc:
        load_group(path, DEFAULTS)
    assert expected in str(exc.value)
    err = refused(capsys, "--config", path)
    assert expected in err


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("upstreams: [a:1\n", "line 2, column 1", id="unclosed list"),
        pytest.param("upstreams: [a:1]\n  method: x\n", "line 2, column 3", id="bad indent"),
        pytest.param("upstreams:\n\t- a:1\n", "line 2, column 1", id="tab"),
    ],
)
def test_config_file_yaml_errors_say_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, where: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(OptionError) as exc:
        load_group(path, DEFAULTS)
    assert str(exc.value).startswith(path + ": ")
    assert where in str(exc.value)
    err = refused(capsys, "--config", path, one_line=False)
    assert path in err and where in err


def test_config_file_yaml_error_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    refused(capsys, "--config", write(tmp_path, "upstreams: [a:1\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "upstreams: ['a:1 fail_timeout=soon']\n",
            "fail_timeout",
            id="fail_timeout",
        ),
        pytest.param(
            "upstreams: ['a:1 wieght=3']\n",
            "ambassador.yaml",
            id="names the file",
        ),
    ],
)
def test_config_file_server_errors_name_file_and_parameter(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(OptionError) as exc:
        load_group(write(tmp_path, text), DEFAULTS)
    assert expected in str(exc.value)


def test_config_file_upstreams_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="list"):
        load_group(write(tmp_path, "upstreams: abc\n"), DEFAULTS)


def test_config_file_unknown_health_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="intervall"):
        load_group(write(tmp_path, "upstreams: [a:1]\nhealth: {intervall: 1s}\n"), DEFAULTS)
