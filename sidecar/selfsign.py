"""`python -m sidecar.selfsign`: write a self-signed EC P-256 certificate and key, for demos
and for a pod's first start (an init container fills a shared volume the sidecar reads).

Existing files are kept unless --force: a restarted pod keeps its certificate.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make(names: Sequence[str], days: int) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sidecar.selfsign", description=__doc__)
    parser.add_argument("--out-dir", default="/certs", help="where tls.crt and tls.key go")
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="DNS name or IP for the certificate (repeatable; default localhost)",
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    cert_path, key_path = out / "tls.crt", out / "tls.key"
    if cert_path.exists() and key_path.exists() and not args.force:
        print(f"keeping the certificate in {out}")
        return
    names = args.name or ["localhost", "127.0.0.1"]
    cert, key = make(names, args.days)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # The key first and private; the certificate last, so a reader never sees a new
        # certificate beside an old key.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        cert_path.write_bytes(cert)
    except OSError as exc:
        print(f"sidecar.selfsign: cannot write to {out}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote a self-signed certificate for {', '.join(names)} to {out}")


if __name__ == "__main__":
    main()
