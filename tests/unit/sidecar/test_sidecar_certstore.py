"""The sidecar's certificate store without sockets: SNI names matched as RFC 6125 says,
certificate fields read by the ssl module and by cryptography, and the client CA bundle
reloaded with the pairs (on change, and on SIGHUP's forced reload)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from support.sidecar_fixtures import write_pair

from sidecar.tls import (
    CertStore,
    Settings,
    certificate_info,
    certificate_info_read_by_cryptography,
    matches,
)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "A.Example.COM", True),
        ("*.example.com", "a.example.com.", True),  # a final dot is the same name
        ("*.example.com", "a.b.example.com", False),  # one label only
        ("*.example.com", "example.com", False),
        ("*.example.com", ".example.com", False),  # an empty label is no label
        ("*.example.com", "aexample.com", False),
        ("*.example.com", "a.example.org", False),
        ("example.com", "example.com", True),
        ("example.com", "EXAMPLE.com", True),
        ("example.com", "a.example.com", False),
        ("a.*.example.com", "a.b.example.com", False),  # not left-most: matches nothing
        ("f*.example.com", "foo.example.com", False),  # partial wildcard: not accepted
        ("*", "localhost", False),
        ("*.", "a.", False),
        ("*.*.example.com", "a.b.example.com", False),
    ],
)
def test_rfc6125_name_matching(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


READERS = [certificate_info, certificate_info_read_by_cryptography]


@pytest.mark.parametrize("read", READERS, ids=["ssl", "cryptography"])
def test_certificate_info(tmp_path: Path, read: Callable[[str], tuple[list[str], float]]) -> None:
    ca = trustme.CA()
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    leaf = ca.issue_cert("a.test", "*.b.test", "127.0.0.1", not_after=not_after)
    cert, _ = write_pair(leaf, tmp_path / "t.crt", tmp_path / "t.key")
    assert read(str(cert)) == (["a.test", "*.b.test"], not_after.timestamp())
    # no DNS subjectAltName: the CN stands in
    only_ip = ca.issue_cert("127.0.0.1", common_name="cn.test")
    cert, _ = write_pair(only_ip, tmp_path / "ip.crt", tmp_path / "ip.key")
    assert read(str(cert))[0] == ["cn.test"]


@pytest.mark.parametrize(
    ("names", "common_name"),
    [
        (("a.test",), None),
        (("xn--bcher-kva.test", "*.wild.test", "10.0.0.1", "::1"), None),
        (("10.0.0.1",), "only-cn.test"),
        (("a.test", "b.test"), "cn.test"),  # the SAN wins over the CN
    ],
)
def test_the_two_readers_agree(
    tmp_path: Path, names: tuple[str, ...], common_name: str | None
) -> None:
    """The ssl module's decoder stands in for cryptography's; a chain file's leaf is read."""
    leaf = trustme.CA().create_child_ca().issue_cert(*names, common_name=common_name)
    cert, _ = write_pair(leaf, tmp_path / "t.crt", tmp_path / "t.key")
    assert certificate_info(str(cert)) == certificate_info_read_by_cryptography(str(cert))


def test_a_file_without_a_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    with pytest.raises((ssl.SSLError, ValueError)):
        certificate_info(str(junk))


def store_of(tmp_path: Path, ca: trustme.CA, *names: str, client_ca: str = "") -> CertStore:
    files = []
    for i, name in enumerate(names):
        cert, key = write_pair(ca.issue_cert(name), tmp_path / f"{i}.crt", tmp_path / f"{i}.key")
        files.append((str(cert), str(key)))
    return CertStore.load(files, Settings(client_ca_file=client_ca))


def test_sni_exact_name_before_wildcard_else_default(tmp_path: Path) -> None:
    store = store_of(tmp_path, trustme.CA(), "localhost", "*.wild.test", "exact.wild.test")
    default, wild, exact = (pair.context for pair in store.pairs)
    assert store.context_for("exact.wild.test") is exact  # listed after the wildcard
    assert store.context_for("EXACT.wild.test") is exact
    assert store.context_for("a.wild.test") is wild
    assert store.context_for("a.b.wild.test") is default
    assert store.context_for("wild.test") is default
    assert store.context_for(None) is default


def test_client_ca_change_reloads_every_pair_and_sighup_forces(tmp_path: Path) -> None:
    ca_file = tmp_path / "client-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    store = store_of(tmp_path, trustme.CA(), "localhost", "other.test", client_ca=str(ca_file))
    before = [pair.context for pair in store.pairs]
    store.check()
    assert store.reloads == 0
    new = ca_file.with_suffix(".new")
    trustme.CA().cert_pem.write_to_path(str(new))
    os.replace(new, ca_file)  # a new inode, as a Secret update gives
    store.check()
    assert store.reloads == 2 and all(
        pair.context is not old for pair, old in zip(store.pairs, before, strict=True)
    )
    store.check()
    assert store.reloads == 2
    store.check(force=True)  # SIGHUP: reloaded though nothing changed
    assert store.reloads == 4
    # a broken bundle is refused, the pairs in use stay
    in_use = [pair.context for pair in store.pairs]
    ca_file.write_text("not a certificate\n")
    store.check()
    assert store.reload_failures == 2 and [p.context for p in store.pairs] == in_use
