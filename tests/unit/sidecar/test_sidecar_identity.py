"""The client certificate's identity headers, read back with readers written from RFC 4514,
Envoy's XFCC documentation and RFC 8941 (support.identity_readers): a CN crafted to look like
another RDN stays one CN in every format; the DER comes back exact; the allow-lists."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import trustme
from cryptography import x509
from support import identity_readers as read
from support.client_certs import ClientCert, issue

from sidecar.identity import (
    AllowList,
    HeaderFormat,
    Identities,
    identity_header_names,
)

HOSTILE_CNS = [
    pytest.param("bob,O=admins", id="comma"),
    pytest.param("bob+O=admins", id="plus"),
    pytest.param('bob",O=admins', id="quote"),
    pytest.param("bob\\,O=admins", id="backslash-comma"),
    pytest.param("bob\\", id="trailing-backslash"),
    pytest.param('bob;Subject="O=admins"', id="xfcc-semicolon"),
    pytest.param('bob",Subject="O=admins', id="xfcc-element"),
    pytest.param("bob\r\nX-Forwarded-Client-Cert: Subject=O=admins", id="crlf"),
    pytest.param("#bob ", id="leading-sharp-trailing-space"),
    pytest.param(" bob", id="leading-space"),
    pytest.param("böb, O=admins", id="non-ascii"),
    pytest.param("<bob>", id="angles"),
]


class FakeSSLObject:
    def __init__(self, chain: tuple[bytes, ...]) -> None:
        self.chain = chain

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.chain[0] if self.chain else None

    def get_verified_chain(self) -> list[bytes]:
        return list(self.chain)


class FakeTransport:
    def __init__(self, chain: tuple[bytes, ...]) -> None:
        self.sslobj = FakeSSLObject(chain)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sslobj if name == "ssl_object" else default


def header_lines(fmt: HeaderFormat, chain: tuple[bytes, ...]) -> dict[str, list[str]]:
    identities = Identities(fmt, "X-Client-Cert-Subject", AllowList())
    raw = identities.lines(FakeTransport(chain))  # type: ignore[arg-type]
    assert raw.endswith(b"\r\n") and raw.isascii()
    out: dict[str, list[str]] = {}
    for line in raw[:-2].decode().split("\r\n"):
        name, sep, value = line.partition(": ")
        assert sep and name and "\r" not in value and "\n" not in value
        out.setdefault(name.lower(), []).append(value)
    return out


def rdn_pairs(subject: str) -> list[tuple[str, str]]:
    return [pair for rdn in read.rfc4514(subject) for pair in rdn]


def naive_unescape(value: str) -> str:
    """An XFCC reader that takes every backslash as escaping the next character."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def bob(ca: trustme.CA, tmp_path: Path, cn: str, **kwargs: Any) -> ClientCert:
    return issue(ca, tmp_path, "bob", cn=cn, o="Acme", **kwargs)


@pytest.mark.parametrize("cn", HOSTILE_CNS)
def test_a_crafted_cn_stays_one_cn_in_every_format(ca: trustme.CA, tmp_path: Path, cn: str) -> None:
    cert = bob(ca, tmp_path, cn, uris=("spiffe://example.org/ns/a/sa/bob",), dns=("bob.test",))
    chain = (cert.der, ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    expected = [("CN", cn), ("O", "Acme")]  # RFC 4514 order: the last RDN first

    # the legacy subject header
    headers = header_lines("subject", chain)
    assert list(headers) == ["x-client-cert-subject"]
    (subject,) = headers["x-client-cert-subject"]
    assert rdn_pairs(subject) == expected
    parsed = x509.Name.from_rfc4514_string(subject)  # cryptography's own reader agrees
    assert [(a.oid, a.value) for a in parsed] == [
        (a.oid, a.value) for a in x509.load_der_x509_certificate(cert.der).subject
    ]

    # Envoy's XFCC
    headers = header_lines("xfcc", chain)
    assert list(headers) == ["x-forwarded-client-cert"]
    (element,) = read.xfcc(headers["x-forwarded-client-cert"][0])
    keys = [key for key, _ in element]
    assert keys == ["hash", "cert", "chain", "subject", "uri", "dns"]
    values = dict(element)
    assert rdn_pairs(values["subject"]) == expected
    # a reader that drops every backslash misreads the value, but finds no other RDN
    naive = naive_unescape(values["subject"])
    assert ("O", "admins") not in rdn_pairs(naive) and naive.count(",") == 1
    assert values["hash"] == hashlib.sha256(cert.der).hexdigest()
    assert ssl.PEM_cert_to_DER_cert(unquote(values["cert"])) == cert.der
    pems = unquote(values["chain"]).split("-----END CERTIFICATE-----\n")[:-1]
    assert tuple(ssl.PEM_cert_to_DER_cert(p + "-----END CERTIFICATE-----\n") for p in pems) == chain
    assert values["uri"] == "spiffe://example.org/ns/a/sa/bob" and values["dns"] == "bob.test"

    # RFC 9440: DER, nothing to misread
    headers = header_lines("rfc9440", chain)
    assert list(headers) == ["client-cert", "client-cert-chain"]
    assert read.byte_sequence(headers["client-cert"][0]) == cert.der
    assert read.byte_sequences(headers["client-cert-chain"][0]) == list(chain[1:])


def test_rfc9440_chain_decodes_to_the_exact_der(tmp_path: Path) -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    cert = issue(intermediate, tmp_path, "alice", cn="alice")
    root_der = ssl.PEM_cert_to_DER_cert(root.cert_pem.bytes().decode())
    chain = (cert.der, *cert.chain_der, root_der)
    headers = header_lines("rfc9440", chain)
    assert read.byte_sequence(headers["client-cert"][0]) == cert.der
    assert read.byte_sequences(headers["client-cert-chain"][0]) == [*cert.chain_der, root_der]
    # a leaf alone (no chain to be had): no Client-Cert-Chain
    assert list(header_lines("rfc9440", (cert.der,))) == ["client-cert"]


def test_san_values_with_delimiters_are_quoted_and_come_back(
    ca: trustme.CA, tmp_path: Path
) -> None:
    uri = 'spiffe://example.org/a,Subject="O=admins";DNS=x'
    cert = bob(ca, tmp_path, "bob", uris=(uri, "spiffe://example.org/plain"), dns=("b.test",))
    (element,) = read.xfcc(header_lines("xfcc", (cert.der,))["x-forwarded-client-cert"][0])
    assert [key for key, _ in element].count("subject") == 1
    assert [unquote(v) for k, v in element if k == "uri"] == [uri, "spiffe://example.org/plain"]
    assert [v for k, v in element if k == "dns"] == ["b.test"]


def test_no_client_certificate_no_lines() -> None:
    identities = Identities("xfcc", "X-Client-Cert-Subject", AllowList())
    reading = identities.read(FakeTransport(()))  # type: ignore[arg-type]
    assert reading.lines == b"" and reading.admitted
    refusing = Identities("xfcc", "X-Client-Cert-Subject", AllowList.of(["alice"], [], [], []))
    assert not refusing.read(FakeTransport(())).admitted  # type: ignore[arg-type]


def test_every_identity_header_name_is_stripped() -> None:
    assert identity_header_names("X-Client-Cert-Subject") == (
        b"x-forwarded-client-cert",
        b"client-cert",
        b"client-cert-chain",
        b"x-client-cert-subject",
    )
    assert identity_header_names("X-SSL-Client-DN")[-1] == b"x-ssl-client-dn"


ALLOW = AllowList.of(
    cn=["alice"],
    ou=["Ops"],
    dns=["Carol.Example.org"],
    uri=["spiffe://example.org/ns/web/sa/api"],
)


@pytest.mark.parametrize(
    ("kwargs", "admitted"),
    [
        pytest.param({"cn": "alice"}, True, id="cn"),
        pytest.param({"cn": "x", "ous": ("Dev", "Ops")}, True, id="second-ou"),
        pytest.param({"cn": "x", "dns": ("carol.example.org",)}, True, id="dns-any-case"),
        pytest.param({"cn": "x", "uris": ("spiffe://example.org/ns/web/sa/api",)}, True, id="uri"),
        pytest.param({"cn": "alice2"}, False, id="cn-prefix"),
        pytest.param({"cn": "mallory", "ous": ("ops",)}, False, id="ou-case"),
        pytest.param({"cn": "x", "dns": ("a.carol.example.org",)}, False, id="dns-sub"),
        pytest.param(
            {"cn": "x", "uris": ("spiffe://example.org/ns/web/sa/api/x",)}, False, id="uri-longer"
        ),
        pytest.param({"cn": "Ops"}, False, id="ou-value-as-cn"),
        pytest.param({"cn": "x", "dns": ("alice",)}, False, id="cn-value-as-dns"),
    ],
)
def test_allow_lists(
    ca: trustme.CA, tmp_path: Path, kwargs: dict[str, Any], admitted: bool
) -> None:
    cert = issue(ca, tmp_path, "c", **kwargs)
    identities = Identities("xfcc", "X-Client-Cert-Subject", ALLOW)
    reading = identities.read(FakeTransport((cert.der,)))  # type: ignore[arg-type]
    assert reading.admitted is admitted
    assert reading.lines  # the headers are made either way; the gate decides
    assert Identities("xfcc", "X", AllowList()).read(FakeTransport((cert.der,))).admitted  # type: ignore[arg-type]
