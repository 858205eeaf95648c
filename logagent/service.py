"""The process: options, logging on stderr (stdout carries the records), the admin port
(/healthz, /readyz, /metrics), the pipeline, and the drain on SIGTERM: readiness false →
stop reading → send what is buffered (bounded by --shutdown-timeout) → checkpoint → exit 0.

/readyz does not follow the outputs: a log sidecar whose receiver is down must not take its
pod out of a Service. An output's state is in /metrics (logagent_output_up).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from logagent.checkpoint import Checkpoint
from logagent.config import DESCRIPTION, PROG, LogagentConfig
from logagent.files import Files
from logagent.metrics import Stats, registry_for
from logagent.outputs import Output
from logagent.outputs.stdout import StdoutOutput
from logagent.outputs.syslog import SyslogOutput
from logagent.pipeline import Pipeline
from podkit import logs
from podkit.admin_http import AdminServer, admin_routes
from podkit.health import Health
from podkit.lifecycle import install_fast_loop, stop_on_signals
from podkit.options import load

log = logging.getLogger("logagent")


def build_outputs(config: LogagentConfig, stats: Stats, stdout_fd: int = 1) -> list[Output]:
    outputs: list[Output] = []
    for name in config.outputs:
        if name == "stdout":
            outputs.append(StdoutOutput(config.stdout_format, config.metadata, stats, stdout_fd))
        else:
            outputs.append(SyslogOutput(config, stats))
    return outputs


async def run(
    config: LogagentConfig,
    stop: asyncio.Event | None = None,
    health: Health | None = None,
    stdout_fd: int = 1,
) -> int:
    """Follow until `stop` is set (or SIGTERM/SIGINT); the exit status."""
    stop = stop or asyncio.Event()
    health = health or Health()
    stats = Stats()
    try:
        os.makedirs(config.state_dir, exist_ok=True)
        checkpoint = Checkpoint(config.state_dir)
        saved = checkpoint.load()
        first_start = not checkpoint.exists()
        if first_start:
            checkpoint.save([])  # fails here, not later, when the directory is not writable
    except OSError as exc:
        log.error("state dir %s is not usable: %s", config.state_dir, exc)
        return 1
    files = Files(config, stats, saved, first_start)
    pipeline = Pipeline(config, files, build_outputs(config, stats, stdout_fd), checkpoint, stats)
    host, port = config.admin_address
    # The small admin server, not aiohttp's: the framework would be half the agent's memory.
    admin = AdminServer(admin_routes(health, registry_for(stats, files.open_tailers)))
    try:
        await admin.start(host, port)
    except OSError as exc:
        log.error("cannot serve the admin port on %s:%d: %s", host, port, exc)
        return 1
    try:
        stop_on_signals(stop)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests)
        pass
    try:
        await pipeline.start()
        health.ready = True
        log.info("following %s → %s; admin on http://%s:%d", ", ".join(config.paths),
                 ", ".join(config.outputs), host, port)
        watch = asyncio.create_task(stop.wait())
        while not stop.is_set():  # a loop that died is a bug: exit instead of hanging
            await asyncio.wait({watch}, timeout=1.0)
            if (error := pipeline.failed()) is not None:
                log.error("pipeline failed: %r", error, exc_info=error)
                return 1
        health.ready = False
        log.info("shutting down: sending buffered records for up to %.1fs",
                 config.shutdown_timeout)
        await pipeline.drain(config.shutdown_timeout)
    finally:
        health.ready = False
        await admin.close()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    config = load(LogagentConfig, argv, prog=PROG, description=DESCRIPTION)
    logs.configure(config.log_level, config.log_format)
    install_fast_loop()
    sys.exit(asyncio.run(run(config)))
