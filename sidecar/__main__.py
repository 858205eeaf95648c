"""`python -m sidecar` / `sidecar`: options, certificates, then serve until SIGTERM."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from podkit import logs
from podkit.options import load
from podkit.runner import run
from sidecar.config import DESCRIPTION, PROG, SidecarConfig
from sidecar.service import SidecarApp, load_certs
from sidecar.tls import CertError

log = logging.getLogger("sidecar")


def main(argv: Sequence[str] | None = None) -> None:
    config = load(SidecarConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.log_level, config.log_format)
    try:
        certs = load_certs(config)
    except CertError as exc:
        print(f"{PROG}: cannot use the certificate: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        status = run(SidecarApp(config, certs))
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        sys.exit(1)
    sys.exit(status)


if __name__ == "__main__":
    main()
