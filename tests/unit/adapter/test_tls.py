"""TLS on the metrics port, without sockets: handshakes run through memory BIOs."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from adapter.config import AdapterConfig
from adapter.tls import (
    TLS_VERSIONS,
    CertError,
    ServerFiles,
    ServerTLS,
    build_context,
    parse_tls_version,
)
from podkit.options import OptionError, load


@dataclass
class Pki:
    ca: trustme.CA
    dir: Path
    files: ServerFiles

    def issue(self, name: str = "adapter.test") -> None:
        """A new server certificate into the same files (the rotation a renewal does)."""
        leaf = self.ca.issue_cert(name)
        leaf.cert_chain_pems[0].write_to_path(self.files.cert_file)
        leaf.private_key_pem.write_to_path(self.files.key_file)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    files = ServerFiles(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    pki = Pki(ca, tmp_path, files)
    pki.issue("first.test")
    return pki


def client_context(ca: trustme.CA, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if leaf is not None:
        leaf.configure_cert(ctx)
    return ctx


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str = "adapter.test") -> str:
    """Run a TLS handshake in memory; the DNS name of the certificate the server sent.

    The client does not check the name (the test asks which certificate came, whatever its
    name); it does verify the chain.
    """
    client.check_hostname = False
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, obj in (("c", c), ("s", s)):
            if not done[key]:
                try:
                    obj.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    cert = c.getpeercert()
    assert cert is not None
    return next(str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS")


@pytest.mark.parametrize(
    ("text", "want"),
    [("TLS1.0", "TLS1.0"), ("TLS1.1", "TLS1.1"), ("TLS1.2", "TLS1.2"), (" tls1.3 ", "TLS1.3")],
)
def test_min_versions_as_redis_exporter_spells_them(text: str, want: str) -> None:
    assert parse_tls_version(text) == want


@pytest.mark.parametrize("text", ["1.2", "TLSv1.2", "SSL3", "TLS1.4", ""])
def test_unknown_min_version(text: str) -> None:
    with pytest.raises(OptionError, match=r"TLS1\.0, TLS1\.1, TLS1\.2, TLS1\.3"):
        parse_tls_version(text)


@pytest.mark.parametrize("version", list(TLS_VERSIONS))
def test_context_takes_the_min_version_without_warnings(pki: Pki, version: str) -> None:
    files = ServerFiles(pki.files.cert_file, pki.files.key_file, min_version=version)
    assert build_context(files).minimum_version == TLS_VERSIONS[version]


def test_min_version_refuses_older_clients(pki: Pki) -> None:
    files = ServerFiles(pki.files.cert_file, pki.files.key_file, min_version="TLS1.3")
    client = client_context(pki.ca)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(ServerTLS(files).front, client)


def test_serves_the_certificate(pki: Pki) -> None:
    assert handshake(ServerTLS(pki.files).front, client_context(pki.ca)) == "first.test"


def test_client_certificate_required_and_verified(pki: Pki, tmp_path: Path) -> None:
    pki.ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    files = ServerFiles(pki.files.cert_file, pki.files.key_file, str(tmp_path / "ca.crt"))
    tls = ServerTLS(files)
    scraper = pki.ca.issue_cert("prometheus")
    assert handshake(tls.front, client_context(pki.ca, scraper)) == "first.test"
    with pytest.raises(ssl.SSLError):  # no certificate
        handshake(ServerTLS(files).front, client_context(pki.ca))
    stranger = trustme.CA().issue_cert("prometheus")
    with pytest.raises(ssl.SSLError):  # signed by another CA
        handshake(ServerTLS(files).front, client_context(pki.ca, stranger))


def test_rotation_serves_the_new_certificate(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    tls = ServerTLS(pki.files)
    assert tls.check() is False  # nothing changed
    pki.issue("second.test")
    with caplog.at_level(logging.INFO, logger="adapter.tls"):
        assert tls.check() is True
    assert tls.reloads == 1 and "TLS certificate reloaded" in caplog.text
    assert handshake(tls.front, client_context(pki.ca)) == "second.test"


def test_broken_new_file_keeps_the_old_certificate(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    tls = ServerTLS(pki.files)
    Path(pki.files.cert_file).write_text("not a certificate\n")
    with caplog.at_level(logging.ERROR, logger="adapter.tls"):
        assert tls.check() is False
        assert tls.check() is False  # the same broken file: said once
    assert tls.reload_failures == 1
    assert caplog.text.count("new TLS certificate rejected, keeping the old one") == 1
    assert handshake(tls.front, client_context(pki.ca)) == "first.test"
    pki.issue("fixed.test")  # a good file after the bad one is taken
    assert tls.check() is True
    assert handshake(tls.front, client_context(pki.ca)) == "fixed.test"


def test_missing_file_keeps_the_old_certificate(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    tls = ServerTLS(pki.files)
    Path(pki.files.key_file).unlink()
    with caplog.at_level(logging.ERROR, logger="adapter.tls"):
        assert tls.check() is False
    assert "keeping the loaded certificate" in caplog.text
    assert handshake(tls.front, client_context(pki.ca)) == "first.test"


def test_key_of_another_certificate_stops_startup(pki: Pki, tmp_path: Path) -> None:
    other = pki.ca.issue_cert("other.test")
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    with pytest.raises(CertError, match=r"tls\.crt / .*other\.key"):
        ServerTLS(ServerFiles(pki.files.cert_file, str(tmp_path / "other.key")))


def config(*argv: str, **env: str) -> AdapterConfig:
    return load(AdapterConfig, list(argv), env, prog="adapter")


def test_options_read_from_flags_and_env(pki: Pki) -> None:
    c = config(
        "-tls-server-cert-file",
        pki.files.cert_file,
        REDIS_EXPORTER_TLS_SERVER_KEY_FILE=pki.files.key_file,
        REDIS_EXPORTER_TLS_SERVER_MIN_VERSION="TLS1.3",
        REDIS_EXPORTER_TLS_SERVER_CERT_CHECK_INTERVAL="500ms",
    )
    assert (c.tls_server_cert_file, c.tls_server_key_file) == (
        pki.files.cert_file,
        pki.files.key_file,
    )
    assert c.tls_server_min_version == "TLS1.3" and c.tls_server_cert_check_interval == 0.5
    assert not any("TLS" in w for w in c.warnings())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"tls_server_cert_file": "cert"}, "go together", id="cert-alone"),
        pytest.param({"tls_server_key_file": "key"}, "go together", id="key-alone"),
        pytest.param({"tls_server_ca_cert_file": "ca"}, "only over TLS", id="ca-alone"),
        pytest.param(
            {"tls_server_cert_file": "cert", "tls_server_key_file": "nope"},
            "REDIS_EXPORTER_TLS_SERVER_KEY_FILE: no such file: ",
            id="missing-file",
        ),
    ],
)
def test_incomplete_tls_stops_startup(pki: Pki, fields: dict[str, str], message: str) -> None:
    paths = {"cert": pki.files.cert_file, "key": pki.files.key_file, "ca": pki.files.cert_file}
    values = {name: paths.get(value, str(pki.dir / value)) for name, value in fields.items()}
    with pytest.raises(OptionError, match=message):
        AdapterConfig(**values)  # type: ignore[arg-type]


def test_bad_min_version_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        config("-tls-server-min-version", "TLS9")
    assert exited.value.code == 2
    assert "--tls-server-min-version / REDIS_EXPORTER_TLS_SERVER_MIN_VERSION" in (
        capsys.readouterr().err
    )
