"""Redis down, slow, or refusing us: /metrics still answers, with redis_up 0 and the error
counted; the log says what is wrong and never shows the password."""

from __future__ import annotations

from pathlib import Path

from support import metrics
from support.processes import RedisServer, Service, adapter, free_port, wait_for


def scrape(service: Service, **kwargs: object) -> dict[str, metrics.Family]:
    status, text = service.get(**kwargs)  # type: ignore[arg-type]
    assert status == 200
    return metrics.parse(text)


def test_redis_stopped_mid_test_and_back(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    service = adapter(tmp_path, "--redis-addr", redis_server.url, "--connection-timeout", "2s")
    started.append(service.start())
    assert metrics.value(scrape(service), "redis_up") == 1

    redis_server.stop()
    down = scrape(service)
    assert metrics.value(down, "redis_up") == 0
    assert metrics.value(down, "redis_exporter_last_scrape_error", err="connect") == 1
    assert metrics.value(down, "redis_adapter_scrape_errors_total", kind="connect") >= 1
    assert "redis_db_keys" not in down  # nothing stale is served

    redis_server.start()
    wait_for(lambda: metrics.value(scrape(service), "redis_up") == 1, what="redis_up back to 1")
    assert service.proc is not None and service.proc.poll() is None
    assert "cannot reach Redis" in service.log() and "works again" in service.log()


def test_unreachable_redis_from_the_start(tmp_path: Path, started: list[Service]) -> None:
    service = adapter(tmp_path, "--redis-addr", f"redis://127.0.0.1:{free_port()}")
    started.append(service.start())
    before = metrics.value(scrape(service), "redis_exporter_scrapes_total")
    for _ in range(3):
        assert metrics.value(scrape(service), "redis_up") == 0
    assert metrics.value(scrape(service), "redis_exporter_scrapes_total") == before + 4
    assert service.log().count("cannot reach Redis") == 1  # said once, not every scrape


def test_slow_redis_answers_within_the_budget(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    service = adapter(tmp_path, "--redis-addr", redis_server.url, "--connection-timeout", "5s")
    started.append(service.start())
    scrape(service)  # a kept connection, so the next scrape waits on the reply, not connect
    # Every client's commands wait 3 s from the moment this returns.
    redis_server.client().execute_command("CLIENT", "PAUSE", "3000", "ALL")
    # Prometheus tells how long it waits; the adapter answers redis_up 0 before that.
    families = scrape(service, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"}, timeout=2.5)
    assert metrics.value(families, "redis_up") == 0
    assert metrics.value(families, "redis_exporter_last_scrape_error", err="timeout") == 1
    wait_for(lambda: metrics.value(scrape(service), "redis_up") == 1, what="recovery")


def test_acl_user_and_password(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    secret = "s3cr3t-pass-word"
    redis_server.client().execute_command(
        "ACL", "SETUSER", "exporter", "on", f">{secret}", "~*", "&*", "+@all"
    )
    redis_server.client().execute_command("ACL", "SETUSER", "default", "off")
    good = adapter(
        tmp_path,
        "--redis-addr",
        redis_server.url,
        "--redis-user",
        "exporter",
        env={"REDIS_PASSWORD": secret},
        name="good",
    )
    bad = adapter(
        tmp_path,
        "--redis-addr",
        redis_server.url,
        "--redis-user",
        "exporter",
        "--redis-password",
        "wrong-" + secret,
        name="bad",
    )
    started.extend([good.start(), bad.start()])
    assert metrics.value(scrape(good), "redis_up") == 1
    families = scrape(bad)
    assert metrics.value(families, "redis_up") == 0
    assert metrics.value(families, "redis_exporter_last_scrape_error", err="auth") == 1
    assert "authentication failed" in bad.log()
    assert secret not in bad.log() + good.log()


def test_acl_user_without_client_or_config_is_still_scraped(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    """As redis_exporter: a refused CLIENT SETNAME or CONFIG GET costs a log line and the
    config_* metrics, not the scrape."""
    redis_server.client().execute_command(
        "ACL", "SETUSER", "monitor", "on", ">pw", "~*", "+@all", "-client", "-config"
    )
    redis_server.client().set("k", "v")
    service = adapter(
        tmp_path,
        "--redis-addr",
        redis_server.url,
        "--redis-user",
        "monitor",
        "--redis-password",
        "pw",
    )
    started.append(service.start())
    for _ in range(2):
        families = scrape(service)
        assert metrics.value(families, "redis_up") == 1
        assert metrics.value(families, "redis_db_keys", db="db0") == 1
        assert "redis_config_maxmemory" not in families
    assert service.log().count("cannot name the connection") == 1


def test_connection_is_named_redis_exporter(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    service = adapter(tmp_path, "--redis-addr", redis_server.url)
    started.append(service.start())
    scrape(service)
    clients = redis_server.client().execute_command("CLIENT", "LIST")
    text = clients.decode() if isinstance(clients, bytes) else str(clients)
    assert "name=redis_exporter" in text


def test_password_file_plain_and_json_map(
    tmp_path: Path, redis_server: RedisServer, started: list[Service]
) -> None:
    redis_server.client().config_set("requirepass", "from-a-file")
    redis_server.password = "from-a-file"
    plain = tmp_path / "password"
    plain.write_text("from-a-file\n")
    json_map = tmp_path / "passwords.json"
    json_map.write_text(f'{{"{redis_server.url}": "from-a-file"}}')
    a = adapter(
        tmp_path,
        "--redis-addr",
        redis_server.url,
        "--redis-password-file",
        str(plain),
        name="plain",
    )
    b = adapter(
        tmp_path,
        "--redis-addr",
        redis_server.url,
        name="json",
        env={"REDIS_PASSWORD_FILE": str(json_map)},
    )
    c = adapter(tmp_path, "--redis-addr", redis_server.url, name="none")
    started.extend([a.start(), b.start(), c.start()])
    assert metrics.value(scrape(a), "redis_up") == 1
    assert metrics.value(scrape(b), "redis_up") == 1
    assert metrics.value(scrape(c), "redis_exporter_last_scrape_error", err="auth") == 1
