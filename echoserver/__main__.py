"""`python -m echoserver` / `echoserver`: options, logging, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from echoserver.app import HEALTH, create_app
from echoserver.config import DESCRIPTION, PROG, EchoConfig
from podkit import logs
from podkit.lifecycle import install_fast_loop, serve_app
from podkit.options import load

log = logging.getLogger("echoserver")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(EchoConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.log_level, config.log_format)
    if config.access_log:  # podkit keeps aiohttp's access log quiet unless a service opts in
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    loop_name = install_fast_loop()
    host, port = config.listen
    log.info("echoing as %r on %s:%d (%s)", config.name, host, port, loop_name)
    app = create_app(config)
    try:
        asyncio.run(serve_app(app, host, port, health=app[HEALTH]))
    except OSError as exc:  # e.g. the port is taken: one clear line, not a traceback
        log.error("cannot serve on %s:%d: %s", host, port, exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
