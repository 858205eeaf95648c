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
    loop_name = install_fast_loop()
    host, port = config.web_listen_address
    log.info(
        "scraping %s, serving %s on %s:%d (%s)",
        mask_credentials(config.redis_addr),
        config.web_telemetry_path,
        host,
        port,
        loop_name,
    )
    app = create_app(config)
    try:
        asyncio.run(
            serve_app(app, host, port, health=app[HEALTH], shutdown_timeout=config.shutdown_timeout)
        )
    except OSError as exc:  # e.g. the port is taken: one clear line, not a traceback
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
