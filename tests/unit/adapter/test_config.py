from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import AdapterConfig, parse_redis_addr
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
