"""The identity options: flags and SIDECAR_* variables, and the combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from podkit.options import load
from sidecar.config import SidecarConfig
from sidecar.service import proxy_settings


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    cert, key, client_ca = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(client_ca))
    return ["--cert-file", str(cert), "--key-file", str(key), "--client-ca-file", str(client_ca)]


def test_defaults_and_repeatable_allow_lists(files: list[str]) -> None:
    config = load(SidecarConfig, [*files, "--allow-cn", "a,b", "--allow-cn", "c"], {}, prog="t")
    assert config.client_cert_header == "xfcc"
    assert config.allow_cn == ("a,b", "c")  # a flag's value is taken whole
    env = {
        "SIDECAR_CLIENT_CERT_HEADER": "RFC9440",
        "SIDECAR_ALLOW_URI": "spiffe://a/x\nspiffe://a/y",
        "SIDECAR_ALLOW_OU": "Ops,Dev",
    }
    config = load(SidecarConfig, files, env, prog="t")
    assert config.client_cert_header == "rfc9440"
    assert config.allow_uri == ("spiffe://a/x", "spiffe://a/y")
    assert config.allow_ou == ("Ops", "Dev")
    # every identity header name is stripped whatever the format
    assert proxy_settings(config).identity_headers == (
        b"x-forwarded-client-cert",
        b"client-cert",
        b"client-cert-chain",
        b"x-client-cert-subject",
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--client-cert-header", "pem"], id="unknown-format"),
        pytest.param(["--client-subject-header", "X Bad"], id="bad-header-name"),
    ],
)
def test_bad_values_stop_startup(
    files: list[str], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load(SidecarConfig, [*files, *argv], {}, prog="sidecar")
    assert exit_info.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_allow_lists_need_client_certificates(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load(SidecarConfig, [*files[:4], "--allow-dns", "a.test"], {}, prog="sidecar")
    assert exit_info.value.code == 2
    assert "--allow-dns / SIDECAR_ALLOW_DNS needs --client-ca-file" in capsys.readouterr().err
