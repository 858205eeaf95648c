"""A secured metrics port: TLS with client certificates and basic auth, as redis_exporter's
-tls-server-* and -basic-auth-* flags have it, scraped by Python's ssl client and by a real
Prometheus; certificate rotation; and no secret in the log."""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from support import metrics
from support.processes import RedisServer, Service, free_port, wait_for
from support.tools import require_binary

USER = "prometheus"
PASSWORD = "Zq9-not-in-any-log-7vK"


@dataclass
class Pki:
    ca: trustme.CA
    dir: Path

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def issue_server(self, *extra_names: str) -> None:
        """A server certificate for 127.0.0.1 into server.pem/server.key (again: a renewal)."""
        leaf = self.ca.issue_cert("127.0.0.1", *extra_names)
        # The key first, then the certificate: the watcher may look in between and must
        # then keep the old pair (a mismatch), not fail.
        leaf.private_key_pem.write_to_path(self.path("server.key"))
        leaf.cert_chain_pems[0].write_to_path(self.path("server.pem"))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    pki = Pki(ca, tmp_path / "certs")
    pki.dir.mkdir()
    ca.cert_pem.write_to_path(pki.path("ca.pem"))
    pki.issue_server("first.test")
    scraper = ca.issue_cert("prometheus.test")
    scraper.private_key_pem.write_to_path(pki.path("client.key"))
    scraper.cert_chain_pems[0].write_to_path(pki.path("client.pem"))
    (pki.dir / "password").write_text(PASSWORD + "\n")
    return pki


def client_context(pki: Pki, *, with_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    if with_cert:
        ctx.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
    return ctx


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Reply:
    status: int
    text: str
    headers: http.client.HTTPMessage
    names: list[str]  # DNS names of the certificate the adapter presented


def https_get(
    port: int, ctx: ssl.SSLContext, path: str = "/metrics", headers: dict[str, str] | None = None
) -> Reply:
    """One GET on a new connection (so a new handshake)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode()
        assert connection.sock is not None
        cert = connection.sock.getpeercert() or {}
        names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        return Reply(response.status, text, response.headers, names)
    finally:
        connection.close()


@dataclass
class SecuredAdapter(Service):
    """The adapter serving HTTPS; ready when /healthz answers over TLS."""

    context: ssl.SSLContext | None = None

    def _answers(self, path: str):  # type: ignore[no-untyped-def]
        def check() -> bool:
            assert self.proc is not None and self.context is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}: {self.log()[-2000:]}")
            return https_get(self.port, self.context, path).status == 200

        return check

    def fetch(self, path: str = "/metrics", **kwargs: Any) -> Reply:
        assert self.context is not None
        return https_get(self.port, self.context, path, **kwargs)


def secured_adapter(
    tmp_path: Path, pki: Pki, redis: RedisServer, *args: str, env: dict[str, str] | None = None
) -> SecuredAdapter:
    port = free_port()
    return SecuredAdapter(
        [
            sys.executable,
            "-m",
            "adapter",
            "--web-listen-address",
            f"127.0.0.1:{port}",
            "--redis-addr",
            redis.url,
            "-tls-server-cert-file",
            pki.path("server.pem"),
            "-tls-server-key-file",
            pki.path("server.key"),
            "-tls-server-ca-cert-file",
            pki.path("ca.pem"),
            *args,
        ],
        port,
        tmp_path / "adapter.log",
        env={
            "REDIS_EXPORTER_BASIC_AUTH_USERNAME": USER,
            "REDIS_EXPORTER_BASIC_AUTH_PASSWORD": PASSWORD,
            **(env or {}),
        },
        context=client_context(pki),
    )


def failures(service: SecuredAdapter, reason: str) -> float:
    reply = service.fetch(headers=basic(USER, PASSWORD))
    assert reply.status == 200, reply.text
    families = metrics.parse(reply.text)
    return metrics.value(families, "redis_adapter_http_auth_failures_total", reason=reason)


def test_python_client_tls_and_basic_auth(
    tmp_path: Path, pki: Pki, redis_server: RedisServer, started: list[Service]
) -> None:
    service = secured_adapter(tmp_path, pki, redis_server, "--debug")
    started.append(service.start("/healthz"))

    reply = service.fetch(headers=basic(USER, PASSWORD))
    assert reply.status == 200 and reply.names == ["first.test"]
    assert metrics.value(metrics.parse(reply.text), "redis_up") == 1

    refused = service.fetch(headers=basic(USER, "wrong-" + PASSWORD))
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="redis-exporter, charset=UTF-8"'
    assert service.fetch().status == 401  # no credentials
    assert service.fetch("/scrape?target=" + redis_server.url).status == 401
    assert service.fetch("/readyz").status == 200  # the kubelet's probes need none
    assert failures(service, "wrong") == 1 and failures(service, "missing") == 2

    no_cert = client_context(pki, with_cert=False)
    # TLS 1.2, so the refusal comes in the handshake (in 1.3 it may come as a closed
    # connection after the client thinks it is done)
    no_cert.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        https_get(service.port, no_cert, "/healthz")
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{service.port}/healthz", timeout=5)

    wait_for(lambda: "refused GET /scrape" in service.log(), what="the refusals in the log")
    assert service.stop() == 0
    log = service.log()
    assert log.count("refused GET /metrics from 127.0.0.1: wrong credentials") == 1
    assert PASSWORD not in log


def test_certificate_rotation(
    tmp_path: Path, pki: Pki, redis_server: RedisServer, started: list[Service]
) -> None:
    service = secured_adapter(
        tmp_path, pki, redis_server, env={"REDIS_EXPORTER_TLS_SERVER_CERT_CHECK_INTERVAL": "200ms"}
    )
    started.append(service.start("/healthz"))
    assert service.fetch("/healthz").names == ["first.test"]

    pki.issue_server("second.test")
    wait_for(lambda: service.fetch("/healthz").names == ["second.test"], what="the new cert")

    Path(pki.path("server.pem")).write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
    wait_for(lambda: "new TLS certificate rejected" in service.log(), what="the rejection")
    reply = service.fetch(headers=basic(USER, PASSWORD))  # still served, with the last good one
    assert reply.status == 200 and reply.names == ["second.test"]
    assert service.stop() == 0
    assert PASSWORD not in service.log()


def prometheus_config(pki: Pki, adapter_port: int) -> str:
    tls = {
        "ca_file": pki.path("ca.pem"),
        "cert_file": pki.path("client.pem"),
        "key_file": pki.path("client.key"),
    }
    job = {"scheme": "https", "tls_config": tls, "static_configs": [{"targets": []}]}
    target = f"127.0.0.1:{adapter_port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                **job,
                "job_name": "redis",
                "basic_auth": {"username": USER, "password_file": pki.path("password")},
                "static_configs": [{"targets": [target]}],
            },
            {
                **job,
                "job_name": "intruder",
                "basic_auth": {"username": USER, "password": "guess"},
                "static_configs": [{"targets": [target]}],
            },
        ],
    }
    return json.dumps(config)  # JSON is YAML


def api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_over_tls_with_basic_auth(
    tmp_path: Path, pki: Pki, redis_server: RedisServer, started: list[Service]
) -> None:
    binary = require_binary("prometheus")
    service = secured_adapter(tmp_path, pki, redis_server)
    started.append(service.start("/healthz"))

    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(prometheus_config(pki, service.port))
    port = free_port()
    prometheus = Service(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        port,
        tmp_path / "prometheus.log",
    )
    started.append(prometheus.start("/-/ready"))

    def health() -> dict[str, dict[str, str]]:
        active = api(port, "targets?state=active")["activeTargets"]
        return {t["labels"]["job"]: t for t in active if t["health"] != "unknown"}

    targets = wait_for(lambda: len(health()) == 2 and health(), what="both jobs scraped")
    assert targets["redis"]["health"] == "up", targets["redis"]
    assert targets["intruder"]["health"] == "down"
    assert "401" in targets["intruder"]["lastError"]

    def redis_up() -> list[Any]:
        return list(api(port, "query?query=redis_up")["result"])

    (sample,) = wait_for(redis_up, what="redis_up in Prometheus")
    assert sample["value"][1] == "1" and sample["metric"]["job"] == "redis"
    assert failures(service, "wrong") >= 1

    assert service.stop() == 0
    assert PASSWORD not in service.log()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("-tls-server-cert-file", "{certs}/server.pem"),
            "--tls-server-cert-file and --tls-server-key-file go together",
            id="cert-without-key",
        ),
        pytest.param(
            ("-tls-server-key-file", "{certs}/server.key"),
            "--tls-server-cert-file and --tls-server-key-file go together",
            id="key-without-cert",
        ),
        pytest.param(
            (
                "-tls-server-cert-file",
                "{certs}/ca.pem",
                "-tls-server-key-file",
                "{certs}/server.key",
            ),
            "adapter: cannot serve TLS: ",
            id="key-of-another-cert",
        ),
        pytest.param(
            ("-basic-auth-password", PASSWORD),
            "--basic-auth-username and --basic-auth-password go together",
            id="password-without-user",
        ),
    ],
)
def test_incomplete_settings_stop_startup(pki: Pki, args: tuple[str, ...], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_EXPORTER_")}
    result = subprocess.run(
        [sys.executable, "-m", "adapter", *(a.format(certs=pki.dir) for a in args)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adapter: ") and message in lines[0]
    assert PASSWORD not in result.stderr
