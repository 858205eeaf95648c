"""`python -m ambassador` / `ambassador`: options, upstreams, then serve until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from ambassador.config import DESCRIPTION, PROG, AmbassadorConfig
from ambassador.service import run, supervise
from podkit import logs
from podkit.lifecycle import install_fast_loop
from podkit.options import load

log = logging.getLogger("ambassador")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(AmbassadorConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.log_level, config.log_format)
    install_fast_loop()
    try:
        asyncio.run(supervise(config) if config.workers > 1 else run(config))
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
