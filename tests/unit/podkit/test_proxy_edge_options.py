"""The edge options every proxy shares (underscores, PROXY protocol, access log), as flags
and variables, and how they reach the engine's settings; the sidecar's --send-proxy-v2."""

from __future__ import annotations

import ipaddress

import pytest

from ambassador.config import AmbassadorConfig
from podkit.options import load
from sidecar.config import SidecarConfig
from sidecar.service import proxy_settings

PLAIN = ["--plain"]


def test_defaults_follow_nginx() -> None:
    settings = proxy_settings(load(SidecarConfig, PLAIN, {}, prog="t"))
    assert settings.underscores_in_headers is False  # underscores_in_headers off
    assert settings.proxy_protocol_from == ()
    assert settings.access_log is True and settings.access_log_format == "text"


def test_flags_and_variables_reach_the_engine() -> None:
    config = load(
        SidecarConfig,
        [*PLAIN, "--proxy-protocol-from", "10.0.0.0/8, 192.0.2.1", "--underscores-in-headers"],
        {"SIDECAR_ACCESS_LOG": "false", "SIDECAR_LOG_FORMAT": "json"},
        prog="t",
    )
    settings = proxy_settings(config)
    assert settings.proxy_protocol_from == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
    )
    assert settings.underscores_in_headers is True
    assert settings.access_log is False and settings.access_log_format == "json"
    config = load(
        AmbassadorConfig,
        ["--upstream", "http://127.0.0.1:1"],
        {"AMBASSADOR_PROXY_PROTOCOL_FROM": "127.0.0.1/32", "AMBASSADOR_LOG_FORMAT": "json"},
        prog="t",
    )
    settings = config.proxy_settings(scheme=b"http", via_name="ambassador")
    assert settings.proxy_protocol_from == (ipaddress.ip_network("127.0.0.1/32"),)
    assert settings.access_log_format == "json"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--proxy-protocol-from", "10.0.0.0/33"],
            "--proxy-protocol-from / SIDECAR_PROXY_PROTOCOL_FROM",
            id="bad-cidr",
        ),
        pytest.param(["--send-proxy-v2"], "needs --mode tcp", id="send-proxy-needs-tcp"),
    ],
)
def test_bad_values_stop_startup(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load(SidecarConfig, [*PLAIN, *argv], {}, prog="sidecar")
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_send_proxy_v2_in_tcp_mode() -> None:
    config = load(SidecarConfig, [*PLAIN, "--mode", "tcp", "--send-proxy-v2"], {}, prog="t")
    assert config.send_proxy_v2 is True
