"""Client certificates made with cryptography, signed by a trustme CA: any subject (a CN of
`bob,O=admins`), OUs, DNS and URI (SPIFFE) subjectAltNames, which trustme cannot make."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class ClientCert:
    der: bytes  # the leaf
    chain_der: tuple[bytes, ...]  # the issuers the client sends after the leaf
    cert_file: Path  # PEM: leaf, then the issuers
    key_file: Path

    def configure(self, ctx: ssl.SSLContext) -> ssl.SSLContext:
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def issue(
    ca: trustme.CA,
    workdir: Path,
    stem: str,
    *,
    cn: str | None = None,
    o: str | None = None,
    ous: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
) -> ClientCert:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)] if o else []
    attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    attrs += [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    workdir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = workdir / f"{stem}.crt", workdir / f"{stem}.key"
    # an intermediate CA goes with the leaf, up to (not including) the root
    issuers: list[bytes] = []
    node: trustme.CA | None = ca
    while node is not None and node.parent_cert is not None:
        issuers.append(node.cert_pem.bytes())
        node = node.parent_cert
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + b"".join(issuers))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem.decode()) for pem in issuers)
    return ClientCert(cert.public_bytes(serialization.Encoding.DER), chain, cert_file, key_file)
