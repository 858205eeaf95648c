"""The verified client certificate as the main container reads it, and who may connect.

Read with cryptography from the DER the TLS layer verified, once per certificate chain (the
result is remembered), never per request: the engine asks `Identities.lines` once per
connection and adds the bytes to every request head it forwards.

Three header formats (`--client-cert-header`):

- `xfcc`: Envoy's `X-Forwarded-Client-Cert`, one element `Hash=…;Cert="…";Chain="…";
  Subject="…";URI=…;DNS=…` as Envoy's documentation describes it (a value holding `,` `;`
  or `=` is double-quoted, Subject always; Cert and Chain are URL-encoded PEM).
- `rfc9440`: `Client-Cert: :<base64 DER>:` and `Client-Cert-Chain` (the rest of the verified
  chain, leaf excluded), RFC 8941 byte sequences.
- `subject`: the older `X-Client-Cert-Subject` (the name set by `--client-subject-header`)
  holding the subject alone, kept because the README documented it.

The subject is cryptography's RFC 4514 string with every escape written as a hex pair
(`\\2C` for `,`, RFC 4514 §2.4), and any control or non-ASCII character as the hex pairs of
its UTF-8 bytes: the string holds no `"`, no CR/LF and no unescaped separator, so neither the
header nor an XFCC reader that drops backslashes can see an RDN the certificate does not
have (a CN of `bob,O=admins` stays one CN).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

if TYPE_CHECKING:  # imported where a client certificate is read: only with mTLS (~10 MiB)
    from cryptography import x509

log = logging.getLogger(__name__)

HeaderFormat = Literal["xfcc", "rfc9440", "subject"]
HEADER_FORMATS: tuple[HeaderFormat, ...] = ("xfcc", "rfc9440", "subject")
XFCC = "X-Forwarded-Client-Cert"
CLIENT_CERT = "Client-Cert"
CLIENT_CERT_CHAIN = "Client-Cert-Chain"
LEGACY_SUBJECT = "X-Client-Cert-Subject"
CACHE_LIMIT = 1024  # certificate chains remembered; beyond, the table starts again


def identity_header_names(subject_header: str) -> tuple[bytes, ...]:
    """Every identity header name, lower-case: stripped from what clients send, whatever
    the format in use."""
    names = (XFCC, CLIENT_CERT, CLIENT_CERT_CHAIN, LEGACY_SUBJECT, subject_header)
    return tuple(dict.fromkeys(name.lower().encode() for name in names if name))


# -- reading the certificate ------------------------------------------------------------------


def peer_chain(transport: asyncio.BaseTransport) -> tuple[bytes, ...]:
    """The verified chain as DER, leaf first (just the leaf where the chain cannot be had);
    () without a client certificate."""
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return ()
    leaf = sslobj.getpeercert(binary_form=True)
    if not leaf:
        return ()
    chain = verified_chain(sslobj)
    return chain if chain and chain[0] == leaf else (leaf,)


def verified_chain(sslobj: ssl.SSLObject) -> tuple[bytes, ...]:
    # Public as SSLObject.get_verified_chain from Python 3.13; on 3.10-3.12 the same method
    # of the underlying _ssl object, returning certificate objects.
    public = getattr(sslobj, "get_verified_chain", None)
    if public is not None:
        return tuple(public())
    native = getattr(getattr(sslobj, "_sslobj", None), "get_verified_chain", None)
    if native is None:
        return ()
    return tuple(cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in native())  # type: ignore[attr-defined]


_SPECIAL = frozenset('\\"+,;<>#= ')


def rfc4514(name: x509.Name) -> str:
    """cryptography's RFC 4514 string, every escape as a hex pair, ASCII only."""
    text = name.rfc4514_string()
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1]
            if nxt in _SPECIAL:
                out.append(f"\\{ord(nxt):02X}")
                i += 2
            else:  # already a hex pair (cryptography writes NUL as \00)
                out.append(text[i : i + 3])
                i += 3
            continue
        if " " <= c <= "~" and c != '"':
            out.append(c)
        else:
            out.extend(f"\\{byte:02X}" for byte in c.encode())
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class ClientCert:
    """What the headers and the allow-lists need from a verified chain."""

    chain: tuple[bytes, ...]  # DER, leaf first
    subject: str  # RFC 4514, header-safe
    cns: tuple[str, ...]
    ous: tuple[str, ...]
    dns: tuple[str, ...]
    uris: tuple[str, ...]

    @classmethod
    def parse(cls, chain: tuple[bytes, ...]) -> ClientCert:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(chain[0])
        name = cert.subject
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = tuple(san.get_values_for_type(x509.DNSName))
            uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        except x509.ExtensionNotFound:
            dns = uris = ()
        return cls(
            chain=chain,
            subject=rfc4514(name),
            cns=_values(name, NameOID.COMMON_NAME),
            ous=_values(name, NameOID.ORGANIZATIONAL_UNIT_NAME),
            dns=dns,
            uris=uris,
        )


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(str(attr.value) for attr in name.get_attributes_for_oid(oid))


# -- the header formats -----------------------------------------------------------------------

_XFCC_QUOTE = frozenset(',;="')
# SAN strings are IA5 and may hold anything: outside visible ASCII, and `"` and `\`, they go
# percent-encoded (a URI's own escape), so a value never needs an escape inside its quotes.
_SAN_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


def xfcc_value(value: str) -> str:
    """Envoy's rule: a value holding `,` `;` or `=` is double-quoted (a `"` as `\\"`)."""
    if any(c in _XFCC_QUOTE for c in value):
        return '"' + value.replace('"', '\\"') + '"'
    return value


def _pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


def xfcc(cert: ClientCert) -> bytes:
    """One XFCC element, in Envoy's key order (By is left out: it names the proxy's own
    certificate URI, which the sidecar does not have)."""
    leaf = cert.chain[0]
    parts = [
        "Hash=" + hashlib.sha256(leaf).hexdigest(),
        'Cert="' + quote(_pem(leaf), safe="") + '"',
        'Chain="' + quote("".join(_pem(der) for der in cert.chain), safe="") + '"',
        'Subject="' + cert.subject + '"',  # holds no `"` (see rfc4514)
    ]
    parts += ["URI=" + xfcc_value(quote(uri, safe=_SAN_SAFE)) for uri in cert.uris]
    parts += ["DNS=" + xfcc_value(quote(name, safe=_SAN_SAFE)) for name in cert.dns]
    return f"{XFCC}: {';'.join(parts)}\r\n".encode("ascii")


def _byte_sequence(der: bytes) -> bytes:
    return b":" + base64.b64encode(der) + b":"


def rfc9440(cert: ClientCert) -> bytes:
    line = CLIENT_CERT.encode() + b": " + _byte_sequence(cert.chain[0]) + b"\r\n"
    if len(cert.chain) > 1:
        items = b", ".join(_byte_sequence(der) for der in cert.chain[1:])
        line += CLIENT_CERT_CHAIN.encode() + b": " + items + b"\r\n"
    return line


# -- per connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """ghostunnel's --allow-cn/-ou/-dns/-uri: any match admits; none given admits every
    verified certificate."""

    cn: frozenset[str] = frozenset()
    ou: frozenset[str] = frozenset()
    dns: frozenset[str] = frozenset()  # lower-case
    uri: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, cn: Iterable[str], ou: Iterable[str], dns: Iterable[str], uri: Iterable[str]
    ) -> AllowList:
        return cls(frozenset(cn), frozenset(ou), frozenset(d.lower() for d in dns), frozenset(uri))

    @property
    def empty(self) -> bool:
        return not (self.cn or self.ou or self.dns or self.uri)

    def admits(self, cert: ClientCert | None) -> bool:
        if self.empty:
            return True
        if cert is None:
            return False
        return (
            any(cn in self.cn for cn in cert.cns)
            or any(ou in self.ou for ou in cert.ous)
            or any(name.lower() in self.dns for name in cert.dns)
            or any(uri in self.uri for uri in cert.uris)
        )


@dataclass(frozen=True)
class Reading:
    admitted: bool
    lines: bytes  # the header lines for the main container; b"" without a certificate
    subject: str = ""  # for log lines


class Identities:
    """The client certificate of each connection, read once per distinct chain."""

    def __init__(self, fmt: HeaderFormat, subject_header: str, allow: AllowList) -> None:
        self.format = fmt
        self.subject_header = subject_header
        self.allow = allow
        self.none = Reading(allow.empty, b"")
        self._seen: dict[tuple[bytes, ...], Reading] = {}

    def lines(self, transport: asyncio.Transport) -> bytes:
        """The engine's seam (podkit.proxy.context.IdentityOf)."""
        return self.read(transport).lines

    def read(self, transport: asyncio.BaseTransport) -> Reading:
        chain = peer_chain(transport)
        if not chain:
            return self.none
        reading = self._seen.get(chain)
        if reading is None:
            reading = self._read(chain)
            if len(self._seen) >= CACHE_LIMIT:
                self._seen.clear()
            self._seen[chain] = reading
        return reading

    def _read(self, chain: tuple[bytes, ...]) -> Reading:
        try:
            cert = ClientCert.parse(chain)
        except ValueError as exc:  # OpenSSL verified it, but cryptography cannot read it
            log.warning("client certificate unreadable, no identity passed on: %s", exc)
            return Reading(self.allow.empty, b"")
        if self.format == "xfcc":
            lines = xfcc(cert)
        elif self.format == "rfc9440":
            lines = rfc9440(cert)
        else:
            lines = f"{self.subject_header}: {cert.subject}\r\n".encode("ascii")
        return Reading(self.allow.admits(cert), lines, cert.subject)
