"""`python -m gitsync` / `gitsync`: options, logging, then sync until done or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from gitsync.config import DESCRIPTION, PROG, GitSyncConfig
from gitsync.service import run
from podkit import logs
from podkit.options import load, mask_credentials

log = logging.getLogger("gitsync")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(GitSyncConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.effective_log_level, config.log_format)
    log.info("%s mode: %s", config.mode, mask_credentials(config.repo))
    try:
        sys.exit(asyncio.run(run(config)))
    except OSError as exc:  # e.g. the admin port is taken: one clear line, not a traceback
        log.error("cannot start: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
