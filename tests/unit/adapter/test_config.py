from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import AdapterConfig
from adapter.flag_values import parse_redis_addr
from podkit.options import OptionError, load


def config(*argv: str, **env: str) -> AdapterConfig:
    return load(AdapterConfig, list(argv), env, prog="adapter")


def test_defaults_match_redis_exporter() -> None:
    c = config()
    assert c.redis_addr == "redis://localhost:6379"
    assert c.web_listen_address == ("0.0.0.0", 9121)
    assert c.web_telemetry_path == "/metrics"
    assert c.namespace == "redis"
    assert c.connection_timeout == 15.0


def test_env_names_and_flag_precedence() -> None:
    c = config(
        "--namespace",
        "flag",
        REDIS_EXPORTER_NAMESPACE="env",
        REDIS_ADDR="redis://r:1",
        REDIS_EXPORTER_INCL_SYSTEM_METRICS="true",
        REDIS_EXPORTER_CONNECTION_TIMEOUT="500ms",
    )
    assert c.namespace == "flag" and c.redis_addr == "redis://r:1"
    assert c.include_system_metrics is True and c.connection_timeout == 0.5


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("redis://h:1", "redis://h:1"),
        ("rediss://h:1", "rediss://h:1"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("h:6379", "redis://h:6379"),
    ],
)
def test_redis_addr(text: str, want: str) -> None:
    assert parse_redis_addr(text) == want


@pytest.mark.parametrize(
    "text", ["http://h:1", "justahost", "", "redis://[::1", "redis://h:99999", "redis://h:port"]
)
def test_redis_addr_errors(text: str) -> None:
    with pytest.raises(OptionError):
        parse_redis_addr(text)


def test_tls_key_and_cert_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(OptionError, match="go together"):
        AdapterConfig(tls_client_cert_file=str(cert))


def test_password_sources(tmp_path: Path) -> None:
    plain = tmp_path / "pw"
    plain.write_text("p1\n")
    assert AdapterConfig(redis_password_file=str(plain)).password_for("redis://a:1") == "p1"
    mapping = tmp_path / "pw.json"
    mapping.write_text('{"redis://a:1": "pa", "redis://b:1": "pb"}')
    c = AdapterConfig(redis_password_file=str(mapping))
    assert c.password_for("redis://b:1") == "pb" and c.password_for("redis://c:1") == ""
    assert (
        AdapterConfig(redis_password="direct", redis_password_file=str(mapping)).password_for(
            "redis://a:1"
        )
        == "direct"
    )


def test_bad_value_exits_2_naming_flag_and_env(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config(REDIS_EXPORTER_CONNECTION_TIMEOUT="soon")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--connection-timeout / REDIS_EXPORTER_CONNECTION_TIMEOUT" in err
    assert "$REDIS_EXPORTER_CONNECTION_TIMEOUT" in err


def test_secret_is_never_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    from podkit.options import redacted

    assert redacted(AdapterConfig(redis_password="hunter2"))["redis_password"] == "<redacted>"


def test_sources_flags_in_both_spellings(tmp_path: Path) -> None:
    script = tmp_path / "s.lua"
    script.write_text("return {}")
    go = config(
        "-check-streams",
        "db1=orders:*",
        "-check-single-streams=db0=events",
        "-check-key-groups",
        '^(user):,"^(a,b)"',
        "-max-distinct-key-groups",
        "5",
        "-script",
        str(script),
        "-export-client-list",
        "-export-client-port=true",
        "-ping-on-connect",
        "-include-config-metrics",
        "-redact-config-metrics=false",
    )
    assert go.check_streams == ((1, "orders:*"),)
    assert go.check_single_streams == ((0, "events"),)
    assert go.check_key_groups == ("^(user):", "^(a,b)")  # CSV, as redis_exporter reads it
    assert go.max_distinct_key_groups == 5 and go.script == (str(script),)
    assert go.export_client_list and go.export_client_port and go.ping_on_connect
    assert go.include_config_metrics and not go.redact_config_metrics
    env = config(
        REDIS_EXPORTER_CHECK_STREAMS="db1=orders:*",
        REDIS_EXPORTER_CHECK_KEY_GROUPS="^(user):",
        REDIS_EXPORTER_EXPORT_CLIENT_LIST="true",
        REDIS_EXPORTER_INCL_CONFIG_METRICS="1",
        REDIS_EXPORTER_REDACT_CONFIG_METRICS="false",
        REDIS_EXPORTER_SCRIPT=str(script),
    )
    assert env.check_streams == go.check_streams and env.check_key_groups == ("^(user):",)
    assert env.export_client_list and env.include_config_metrics
    assert not env.redact_config_metrics and env.script == go.script
    assert config().redact_config_metrics is True  # redis_exporter's default


def test_missing_script_stops_startup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config("-script", "/nonexistent/s.lua")
    assert exc.value.code == 2
    assert "--script / REDIS_EXPORTER_SCRIPT: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "warned"),
    [
        pytest.param((), [], id="none"),
        pytest.param(("-is-cluster",), [], id="cluster-works"),
        pytest.param(("-is-tile38",), ["--is-tile38"], id="tile38"),
        pytest.param(
            ("-basic-auth-username", "u", "-basic-auth-password", "p"),
            ["over plain HTTP"],
            id="basic-auth-without-tls",
        ),
        pytest.param(("-tls-server-min-version", "TLS1.3"), [], id="min-version-alone"),
    ],
)
def test_accepted_but_unsupported_flags_warn_once(argv: tuple[str, ...], warned: list[str]) -> None:
    said = config(*argv).warnings()
    assert len(said) == len(warned)
    for line, word in zip(said, warned, strict=True):
        assert word in line


def test_latency_histogram_is_off_unless_asked_for() -> None:
    assert config().exclude_latency_histogram_metrics is True  # 1.45's output has none
    assert config("-exclude-latency-histogram-metrics=false").exclude_latency_histogram_metrics is (
        False
    )
    assert (
        config(
            REDIS_EXPORTER_EXCLUDE_LATENCY_HISTOGRAM_METRICS="false"
        ).exclude_latency_histogram_metrics
        is False
    )


def test_version_prints_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    from adapter.__main__ import main

    main(["-version"])
    assert "adapter" in capsys.readouterr().out
