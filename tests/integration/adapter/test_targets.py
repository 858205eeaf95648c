"""Ways to reach Redis: TLS (client certificate), unix socket, /scrape?target= with an
allowlist, and a replica compared with redis_exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from support import metrics
from support.processes import RedisServer, Service, adapter, free_port, redis_exporter, wait_for
from support.tools import require_binary


def up(service: Service, path: str = "/metrics") -> float:
    status, text = service.get(path)
    assert status == 200, text
    return metrics.value(metrics.parse(text), "redis_up")


@pytest.fixture
def tls_redis(tmp_path: Path) -> tuple[RedisServer, Path]:
    require_binary("redis-server")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("adapter@example.test")
    certs = tmp_path / "certs"
    certs.mkdir()
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    server_cert.private_key_pem.write_to_path(str(certs / "server.key"))
    server_cert.cert_chain_pems[0].write_to_path(str(certs / "server.pem"))
    client_cert.private_key_pem.write_to_path(str(certs / "client.key"))
    client_cert.cert_chain_pems[0].write_to_path(str(certs / "client.pem"))
    tls_port = free_port()
    server = RedisServer(
        tmp_path / "redis",
        args=(
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(certs / "server.pem"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.pem"),
            "--tls-auth-clients",
            "yes",
        ),
    ).start()
    server.tls_port = tls_port  # type: ignore[attr-defined]
    yield server, certs
    server.stop()


def test_tls_with_client_certificate(
    tmp_path: Path, tls_redis: tuple[RedisServer, Path], started: list[Service]
) -> None:
    server, certs = tls_redis
    url = f"rediss://localhost:{server.tls_port}"  # type: ignore[attr-defined]
    with_cert = adapter(
        tmp_path,
        "--redis-addr",
        url,
        "--tls-ca-cert-file",
        str(certs / "ca.pem"),
        "--tls-client-cert-file",
        str(certs / "client.pem"),
        "--tls-client-key-file",
        str(certs / "client.key"),
        name="cert",
    )
    without_cert = adapter(
        tmp_path,
        "--redis-addr",
        url,
        name="nocert",
        env={"REDIS_EXPORTER_TLS_CA_CERT_FILE": str(certs / "ca.pem")},
    )
    untrusted = adapter(
        tmp_path,
        "--redis-addr",
        url,
        name="untrusted",
        env={
            "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE": str(certs / "client.pem"),
            "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE": str(certs / "client.key"),
        },
    )
    started.extend([with_cert.start(), without_cert.start(), untrusted.start()])
    assert up(with_cert) == 1
    assert up(without_cert) == 0  # Redis demands a client certificate
    assert up(untrusted) == 0  # the system trust store does not know our test CA
    assert "TLS" in untrusted.log() or "certificate" in untrusted.log()


def test_unix_socket(tmp_path: Path, started: list[Service]) -> None:
    require_binary("redis-server")
    sock = tmp_path / "redis.sock"
    server = RedisServer(tmp_path / "redis", args=("--unixsocket", str(sock))).start()
    try:
        service = adapter(tmp_path, "--redis-addr", f"unix://{sock}")
        started.append(service.start())
        assert up(service) == 1
    finally:
        server.stop()


def test_scrape_endpoint_allowlist(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    other = RedisServer(tmp_path / "other").start()
    try:
        other.client().set("only-here", "1")
        locked = adapter(tmp_path, "--redis-addr", redis_server.url, name="locked")
        open_ = adapter(
            tmp_path,
            "--redis-addr",
            redis_server.url,
            name="open",
            env={"REDIS_EXPORTER_SCRAPE_ALLOW": "redis://127.0.0.1:*"},
        )
        started.extend([locked.start(), open_.start()])

        assert up(locked, f"/scrape?target={redis_server.url}") == 1
        status, text = locked.get(f"/scrape?target={other.url}")
        assert status == 403 and "not allowed" in text and "--scrape-allow" in text
        assert locked.get("/scrape")[0] == 400
        assert locked.get("/scrape?target=http://x:1")[0] == 400
        errors = metrics.value(
            metrics.parse(locked.get()[1]), "redis_target_scrape_request_errors_total"
        )
        assert errors == 3

        status, text = open_.get(f"/scrape?target={other.url}")
        assert status == 200
        families = metrics.parse(text)
        assert metrics.value(families, "redis_db_keys", db="db0") == 1
        assert "process_cpu_seconds_total" not in families  # /scrape is about the target only
        # bare host:port is taken as redis://host:port, as redis_exporter does
        assert up(open_, f"/scrape?target=127.0.0.1:{other.port}") == 1
    finally:
        other.stop()


def test_replica_metrics_match_redis_exporter(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    require_binary("prometheus-redis-exporter")
    replica = RedisServer(
        tmp_path / "replica", args=("--replicaof", "127.0.0.1", str(redis_server.port))
    ).start()
    try:
        redis_server.client().set("k", "v")
        wait_for(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            what="replication link",
        )
        names = (
            "redis_master_link_up",
            "redis_slave_info",
            "redis_connected_slave_offset_bytes",
            "redis_connected_slave_lag_seconds",
            "redis_master_sync_in_progress",
            "redis_master_last_io_seconds_ago",
            "redis_slave_repl_offset",
        )
        for target in (replica, redis_server):
            ours = adapter(tmp_path, "--redis-addr", target.url, name=f"a{target.port}")
            theirs = redis_exporter(tmp_path, "-redis.addr", target.url)
            started.extend([ours.start(), theirs.start()])
            a = metrics.parse(ours.get()[1])
            b = metrics.parse(theirs.get()[1])
            present = [n for n in names if n in b]
            assert present, "the oracle shows replication metrics"
            for name in present:
                assert name in a, name
                assert a[name].label_names() == b[name].label_names(), name
                assert a[name].type == b[name].type, name
            if "redis_master_link_up" in b:
                assert metrics.value(a, "redis_master_link_up") == 1
    finally:
        replica.stop()
