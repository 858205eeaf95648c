"""`python -m adapter` / `adapter`: options, logging, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from adapter.app import HEALTH, create_app
from adapter.config import DESCRIPTION, PROG, AdapterConfig
from podkit import logs
from podkit.lifecycle import install_fast_loop, serve_app
from podkit.options import load, mask_credentials

log = logging.getLogger("adapter")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(AdapterConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.effective_log_level, config.log_format)
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
