"""The sidecar's TLS as a scanner sees it: TLS 1.2 and 1.3 only, AEAD suites with forward
secrecy only, secure renegotiation only, no compression.

The scanner is testssl.sh (Debian's `testssl`, installed by scripts/bootstrap-host.sh), with a
short option set and its flat JSON output; the verdicts are its own severities. The sidecar
runs as a process in front of an echoserver, serving an EC P-256 certificate from trustme.
sslyze would be faster (under a second against ~15 s) but caps `cryptography` below the
version the images ship, so the tests would run on another one.

A second sidecar, weakened on purpose with a CBC-SHA1 suite, is scanned too: a scanner that
reports "not offered" must be shown to see what it is asked about.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from support.processes import Service, free_port
from support.tools import require_binary

# Both scans and four processes; each scan has its own, shorter bound.
pytestmark = pytest.mark.timeout(240)

SCAN_WITHIN = 60.0  # a bound on the scan's run, not an assertion (about 15 s here)
# protocols, cipher categories, every suite per protocol, renegotiation, compression (CRIME)
FULL_SCAN = ("--protocols", "--std", "--cipher-per-proto", "--renegotiation", "--crime")
CIPHER_SCAN = ("--std", "--cipher-per-proto")
# testssl's scale, worst last; OK and INFO are no finding.
BAD_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL")
# About testssl's own openssl (built without the GOST engine), not about the server scanned.
SCANNER_NOTES = {"engine_problem"}
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
WEAK_SUITE = "ECDHE-ECDSA-AES128-SHA"  # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: CBC with SHA-1

StartSidecar = Callable[..., int]


@dataclass(frozen=True)
class Finding:
    severity: str
    text: str


@dataclass
class Scan:
    findings: dict[str, Finding]
    seconds: float
    output: str  # testssl's console output, for assertion messages

    def __getitem__(self, finding_id: str) -> Finding:
        assert finding_id in self.findings, f"no {finding_id!r} in the scan:\n{self.output}"
        return self.findings[finding_id]

    def suites(self, protocol: str) -> set[str]:
        """IANA names of the suites accepted with `protocol` ('tls1_2', 'tls1_3')."""
        # "TLS 1.2   xc02b   ECDHE-ECDSA-AES128-GCM-SHA256  ECDH 253  AESGCM  128  TLS_ECDHE_..."
        prefix = f"cipher-{protocol}_"
        return {f.text.split()[-1] for i, f in self.findings.items() if i.startswith(prefix)}


def modern_tls12_suite(iana: str) -> bool:
    """Forward secrecy (ECDHE) and an AEAD cipher (GCM or ChaCha20-Poly1305)."""
    return iana.startswith("TLS_ECDHE_") and ("_GCM_" in iana or "_CHACHA20_POLY1305_" in iana)


def scan(testssl: str, port: int, options: tuple[str, ...], workdir: Path) -> Scan:
    """testssl against 127.0.0.1:port; its findings by id."""
    json_file = workdir / f"testssl-{port}.json"  # testssl refuses to overwrite one
    argv = [
        testssl,
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "batch",  # a scanner error ends the scan instead of a question on the terminal
        "--nodns",
        "none",
        "--connect-timeout",
        "5",
        "--openssl-timeout",
        "5",
        "--jsonfile",
        str(json_file),
        *options,
        f"127.0.0.1:{port}",
    ]
    started = time.monotonic()
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=SCAN_WITHIN + 30, check=False
    )
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"testssl exited {proc.returncode}:\n{output}"
    rows = json.loads(json_file.read_text())
    findings = {row["id"]: Finding(row["severity"], row["finding"]) for row in rows}
    return Scan(findings, seconds, output)


@dataclass
class Pki:
    ca: trustme.CA
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """An EC P-256 CA and server certificate for localhost and 127.0.0.1."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    workdir = tmp_path_factory.mktemp("pki")
    cert_file, key_file = workdir / "tls.crt", workdir / "tls.key"
    leaf.private_key_pem.write_to_path(str(key_file))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert_file), append=index > 0)
    return Pki(ca, cert_file, key_file)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    port = free_port()
    service = Service(
        [sys.executable, "-m", "echoserver", "--listen", f"127.0.0.1:{port}", "--name", "scan"],
        port,
        tmp_path_factory.mktemp("echoserver") / "echoserver.log",
    )
    service.start(ready_path="/healthz")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def start_sidecar(
    pki: Pki, upstream: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartSidecar]:
    """Start a sidecar with extra arguments; returns its TLS port. Each one is stopped."""
    started: list[Service] = []

    def start(*args: str) -> int:
        port, admin = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "sidecar",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            f"http://127.0.0.1:{upstream.port}",
            "--cert-file",
            str(pki.cert_file),
            "--key-file",
            str(pki.key_file),
            "--admin-listen",
            f"127.0.0.1:{admin}",
            # bounds the teardown; draining is the container tests' business
            "--drain-timeout",
            "2s",
            *args,
        ]
        log = tmp_path_factory.mktemp("sidecar") / "sidecar.log"
        service = Service(argv, admin, log)
        started.append(service)
        service.start(ready_path="/readyz")  # ready: the upstream answers too
        return port

    yield start
    hung = []
    for service in started:
        try:
            service.stop()
        except subprocess.TimeoutExpired:  # killed by stop(); the others still get theirs
            hung.append(service.log()[-1000:])
    assert not hung, f"sidecars still running 15 s after SIGTERM: {hung}"


@pytest.fixture(scope="module")
def testssl() -> str:
    return require_binary("testssl")


@pytest.fixture(scope="module")
def sidecar_port(start_sidecar: StartSidecar) -> int:
    return start_sidecar()


@pytest.fixture(scope="module")
def full_scan(testssl: str, sidecar_port: int, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """The defaults' scan, once for the module."""
    return scan(testssl, sidecar_port, FULL_SCAN, tmp_path_factory.mktemp("scan"))


def test_serves_the_ec_certificate_to_a_verifying_client(sidecar_port: int, pki: Pki) -> None:
    """What the scanner sees is this sidecar with this certificate."""
    context = ssl.create_default_context()
    pki.ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # a TLS 1.2 suite names the key type
    with (
        socket.create_connection(("127.0.0.1", sidecar_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        negotiated, peer = tls.cipher(), tls.getpeercert()
    assert negotiated is not None and peer is not None
    cipher, version, _ = negotiated
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-ECDSA-"), cipher
    assert ("DNS", "localhost") in peer["subjectAltName"]


def test_only_tls_1_2_and_1_3(full_scan: Scan) -> None:
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert full_scan[old].text == "not offered", (old, full_scan[old])
    assert full_scan["TLS1_2"].text == "offered"
    assert full_scan["TLS1_3"].text.startswith("offered"), full_scan["TLS1_3"]  # "with final"


def test_no_weak_cipher_category(full_scan: Scan) -> None:
    # NULL, anonymous, EXPORT, LOW (DES, RC2, RC4), 3DES/IDEA, AVERAGE (the obsolete CBC
    # suites: AES-CBC with SHA-1 or SHA-2, ARIA, Camellia)
    for category in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):
        finding = full_scan[f"cipherlist_{category}"]
        assert finding.text == "not offered", (category, finding)
    assert full_scan["cipherlist_STRONG"].text == "offered"


def test_every_accepted_suite_is_aead_with_forward_secrecy(full_scan: Scan) -> None:
    tls12, tls13 = full_scan.suites("tls1_2"), full_scan.suites("tls1_3")
    assert tls12, full_scan.output
    assert sorted(s for s in tls12 if not modern_tls12_suite(s)) == []
    # The EC certificate: only ECDSA-authenticated suites exist for it.
    assert all(s.startswith("TLS_ECDHE_ECDSA_WITH_") for s in tls12), tls12
    assert tls13 and tls13 <= TLS13_SUITES, tls13


def test_secure_renegotiation_only_and_no_compression(full_scan: Scan) -> None:
    assert full_scan["secure_renego"].text == "supported"  # RFC 5746
    assert full_scan["secure_client_renego"].text == "not vulnerable"
    assert full_scan["CRIME_TLS"].text == "not vulnerable"  # no TLS compression


def test_scanner_finds_nothing_to_flag(full_scan: Scan) -> None:
    flagged = {
        finding_id: finding
        for finding_id, finding in full_scan.findings.items()
        if finding.severity in (*BAD_SEVERITIES, "WARN") and finding_id not in SCANNER_NOTES
    }
    assert flagged == {}, full_scan.output


def test_the_scan_sees_a_weak_suite_when_one_is_configured(
    testssl: str, start_sidecar: StartSidecar, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The control: the same scan flags a sidecar told to accept a CBC-SHA1 suite."""
    port = start_sidecar("--ciphers", f"{WEAK_SUITE}:ECDHE-ECDSA-AES128-GCM-SHA256")
    weak = scan(testssl, port, CIPHER_SCAN, tmp_path_factory.mktemp("scan-weak"))

    assert weak["cipherlist_AVERAGE"] == Finding("LOW", "offered")
    tls12 = weak.suites("tls1_2")
    assert "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" in tls12, weak.output
    assert [s for s in tls12 if not modern_tls12_suite(s)] == [
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
    ]
