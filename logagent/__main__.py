"""`python -m logagent` / `logagent`: options, logging (stderr), then follow until SIGTERM."""

from __future__ import annotations

from logagent.service import main

if __name__ == "__main__":
    main()
