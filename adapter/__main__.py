"""`python -m adapter` / `adapter`: options, logging, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from collections.abc import Sequence

import podkit
from adapter.app import HEALTH, create_app
from adapter.config import DESCRIPTION, PROG, AdapterConfig
from adapter.tls import CertError, ServerFiles, ServerTLS
from podkit import logs
from podkit.lifecycle import install_fast_loop, serve_app
from podkit.options import load, mask_credentials

log = logging.getLogger("adapter")


VERSION_FLAGS = frozenset({"-version", "--version"})  # redis_exporter's: print it and exit 0


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if VERSION_FLAGS.intersection(args):
        print(f"{PROG} (pod-patterns) {podkit.__version__}, Python {platform.python_version()}")
        return
    config = load(AdapterConfig, args, prog=PROG, description=DESCRIPTION)
    logs.configure(config.effective_log_level, config.log_format)
    for warning in config.warnings():
        log.warning("%s", warning)
    tls = server_tls(config)
    loop_name = install_fast_loop()
    host, port = config.web_listen_address
    log.info(
        "scraping %s, serving %s on %s:%d (%s%s%s)",
        mask_credentials(config.redis_addr),
        config.web_telemetry_path,
        host,
        port,
        loop_name,
        ", TLS" if tls else "",
        ", basic auth" if config.basic_auth_username else "",
    )
    app = create_app(config)
    if tls is not None:
        app.cleanup_ctx.append(tls.watcher(config.tls_server_cert_check_interval))
    try:
        asyncio.run(
            serve_app(
                app,
                host,
                port,
                health=app[HEALTH],
                shutdown_timeout=config.shutdown_timeout,
                ssl_context=tls.front if tls else None,
            )
        )
    except OSError as exc:  # e.g. the port is taken: one clear line, not a traceback
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        sys.exit(1)


def server_tls(config: AdapterConfig) -> ServerTLS | None:
    """TLS for the metrics port, or None; files that cannot be used stop startup (exit 2)."""
    if not config.tls_server_cert_file:
        return None
    files = ServerFiles(
        config.tls_server_cert_file,
        config.tls_server_key_file,
        config.tls_server_ca_cert_file,
        config.tls_server_min_version,
    )
    try:
        return ServerTLS(files)
    except CertError as exc:
        print(f"{PROG}: cannot serve TLS: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
