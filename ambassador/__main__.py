"""`python -m ambassador` / `ambassador`: options, upstreams, then serve until SIGTERM."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ambassador.config import DESCRIPTION, PROG, AmbassadorConfig
from ambassador.service import AmbassadorApp
from podkit import logs
from podkit.options import load
from podkit.runner import run

log = logging.getLogger("ambassador")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(AmbassadorConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.log_level, config.log_format)
    try:
        status = run(AmbassadorApp(config))
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        sys.exit(1)
    sys.exit(status)


if __name__ == "__main__":
    main()
