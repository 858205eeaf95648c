"""TLS for the sidecar: contexts built from certificate files, chosen per handshake by SNI,
and swapped when the files change (a Kubernetes Secret update is a symlink swap).

The listening socket keeps one front context for its whole life; its `sni_callback` points
each new handshake at the current context for the requested name (with or without SNI, so
the client CA bundle verified against is the current one too). Reloading therefore never
touches open connections, and a broken new pair leaves the old context in place. The client
CA bundle is part of every pair: when it changes, every pair is reloaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

log = logging.getLogger(__name__)

FileSignature = tuple[tuple[int, int, int], ...]


class CertError(Exception):
    """A certificate/key pair that cannot be used; the message says why."""


def _signature(*paths: str) -> FileSignature:
    out = []
    for path in paths:
        if not path:
            continue
        st = os.stat(path)  # follows symlinks: a swapped ..data link changes inode and mtime
        out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def certificate_info(cert_file: str) -> tuple[list[str], float]:
    """(DNS names, notAfter as a Unix time) of the first certificate in a PEM file; the
    subject's CN stands in for the names when there is no DNS subjectAltName.

    Read by the ssl module's own decoder (OpenSSL's, what getpeercert() returns) where the
    interpreter has it: cryptography would add ~10 MiB to every sidecar's resident memory
    for two fields. A unit test holds the two readings side by side."""
    decode = cast(
        "Callable[[str], dict[str, Any]] | None",
        getattr(ssl._ssl, "_test_decode_cert", None),  # type: ignore[attr-defined]
    )
    if decode is None:  # an interpreter without it: cryptography reads the file
        return certificate_info_read_by_cryptography(cert_file)
    cert = decode(cert_file)
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    if not names:
        names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    return names, float(ssl.cert_time_to_seconds(cert["notAfter"]))


def certificate_info_read_by_cryptography(cert_file: str) -> tuple[list[str], float]:
    """certificate_info, read with cryptography."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    with open(cert_file, "rb") as f:
        cert = x509.load_pem_x509_certificates(f.read())[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = list(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names, cert.not_valid_after_utc.timestamp()


def matches(pattern: str, server_name: str) -> bool:
    """RFC 6125 §6.4: a DNS name matches itself (case-insensitively, a final dot ignored);
    a `*` as the whole left-most label stands for exactly one label, so `*.example.com`
    matches `a.example.com`, and neither `a.b.example.com` nor `example.com`. A `*`
    anywhere else (or a partial one, `f*.example.com`) matches nothing."""
    pattern = pattern.lower().rstrip(".")
    name = server_name.lower().rstrip(".")
    if not pattern.startswith("*."):
        return "*" not in pattern and pattern == name
    base = pattern[2:]
    if "*" in base or not base:
        return False
    label, dot, rest = name.partition(".")
    return bool(dot) and bool(label) and rest == base


@dataclass
class Settings:
    min_version: str = "1.2"
    ciphers: str = ""
    client_ca_file: str = ""
    client_auth: str = "require"


def build_context(cert_file: str, key_file: str, settings: Settings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    try:
        if settings.ciphers:
            ctx.set_ciphers(settings.ciphers)
        ctx.load_cert_chain(cert_file, key_file)
        if settings.client_ca_file:
            ctx.load_verify_locations(settings.client_ca_file)
            ctx.verify_mode = (
                ssl.CERT_OPTIONAL if settings.client_auth == "optional" else ssl.CERT_REQUIRED
            )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise CertError(f"{cert_file} / {key_file}: {exc}") from exc
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass
class Pair:
    cert_file: str
    key_file: str
    context: ssl.SSLContext
    names: list[str]
    not_after: float
    signature: FileSignature

    @classmethod
    def load(cls, cert_file: str, key_file: str, settings: Settings) -> Pair:
        try:
            signature = _signature(cert_file, key_file, settings.client_ca_file)
            context = build_context(cert_file, key_file, settings)
            names, not_after = certificate_info(cert_file)
        except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
            raise CertError(f"{cert_file} / {key_file}: {exc}") from exc
        return cls(cert_file, key_file, context, names, not_after, signature)


@dataclass
class CertStore:
    """The certificate pairs in use; pairs[0] is the default (no SNI, or no match)."""

    settings: Settings
    pairs: list[Pair] = field(default_factory=list)
    reloads: int = 0
    reload_failures: int = 0

    @classmethod
    def load(cls, files: list[tuple[str, str]], settings: Settings) -> CertStore:
        return cls(settings, [Pair.load(cert, key, settings) for cert, key in files])

    def front_context(self) -> ssl.SSLContext:
        """The listening socket's context: the default pair's, with SNI selection."""
        # Its own context object, so swapping pair contexts never changes what it verifies.
        default = self.pairs[0]
        front = build_context(default.cert_file, default.key_file, self.settings)
        front.sni_callback = self._select
        return front

    def _select(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sslobj.context = self.context_for(server_name)
        return None

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        """The pair for an SNI name: an exact name first, then a wildcard, else the default."""
        if server_name and len(self.pairs) > 1:
            for wildcard in (False, True):
                for pair in self.pairs:
                    for pattern in pair.names:
                        if pattern.startswith("*.") == wildcard and matches(pattern, server_name):
                            return pair.context
        return self.pairs[0].context

    def check(self, force: bool = False) -> None:
        """Reload every pair whose files (certificate, key, client CA bundle) changed, or
        every pair when `force` (SIGHUP); keep the old one if the new is broken."""
        ca_file = self.settings.client_ca_file
        for index, pair in enumerate(self.pairs):
            try:
                signature = _signature(pair.cert_file, pair.key_file, ca_file)
            except OSError as exc:
                log.error(
                    "certificate files %s / %s / %s unreadable, keeping the loaded ones: %s",
                    pair.cert_file,
                    pair.key_file,
                    ca_file or "-",
                    exc,
                )
                continue
            if signature == pair.signature and not force:
                continue
            try:
                fresh = Pair.load(pair.cert_file, pair.key_file, self.settings)
            except CertError as exc:
                self.reload_failures += 1
                pair.signature = signature  # say it once per change, not every check
                log.error("new certificate rejected, keeping the old one: %s", exc)
                continue
            self.pairs[index] = fresh
            self.reloads += 1
            expires = datetime.fromtimestamp(fresh.not_after, UTC).isoformat()
            log.info(
                "certificate reloaded%s: %s (%s, expires %s)%s",
                " (SIGHUP)" if force else "",
                fresh.cert_file,
                ", ".join(fresh.names) or "no names",
                expires,
                f", client CA {ca_file}" if ca_file else "",
            )

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


# Handshake failures by reason, with a bounded set of labels.
HANDSHAKE_REASONS = {
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_VERSION_NUMBER": "protocol_version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol_version",
    "HTTP_REQUEST": "plain_http",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_SUITABLE_KEY_SHARE": "no_shared_cipher",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "client_cert_missing",
    "CERTIFICATE_VERIFY_FAILED": "client_cert_invalid",
}
# timeout and client_closed: counted where the connection is held (first_bytes.count_handshake_end).
HANDSHAKE_LABELS = (
    *sorted(set(HANDSHAKE_REASONS.values())),
    "rejected_by_client",
    "timeout",
    "client_closed",
    "other",
)


def handshake_failure(exc: ssl.SSLError) -> str:
    reason = exc.reason or ""
    if reason in HANDSHAKE_REASONS:
        return HANDSHAKE_REASONS[reason]
    if "ALERT" in reason:
        return "rejected_by_client"  # the client refused our certificate, most often
    return "other"


def count_handshake_failures(context: ssl.SSLContext, failures: dict[str, int]) -> None:
    """Make `context` count failed handshakes by reason into `failures`.

    Neither asyncio nor uvloop reports a failed server-side handshake anywhere (not even to
    the loop's exception handler), but both drive it through the context's SSLObject, whose
    class can be ours. Handshakes that time out or lose their peer raise no SSLError; they
    are counted where the connection is held (first_bytes.count_handshake_end).
    """

    class CountingSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except ssl.SSLWantReadError:
                raise
            except ssl.SSLError as exc:
                label = handshake_failure(exc)
                failures[label] = failures.get(label, 0) + 1
                raise

    context.sslobject_class = CountingSSLObject
