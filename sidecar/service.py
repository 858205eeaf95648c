"""The sidecar assembled: the TLS listener on the shared engine, the admin port, the optional
redirect listener and the certificate watcher; runs until SIGTERM, then drains.

One process by default; with --workers N, N forked processes share the port and the parent
keeps the admin port for the set (podkit.workers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from aiohttp import web

from podkit.admin import admin_app, start_site
from podkit.health import Health
from podkit.lifecycle import install_fast_loop, stop_on_signals
from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.stats import ProxyStats
from podkit.proxy.tunnel import TunnelClient
from podkit.workers import Workers, report_forever
from sidecar.config import SidecarConfig
from sidecar.first_bytes import FirstBytes
from sidecar.metrics import registry_for
from sidecar.redirect import redirect_app
from sidecar.tls import CertStore, Settings, count_handshake_failures, subject_of

log = logging.getLogger("sidecar")
READY_CACHE_SECONDS = 1.0


def proxy_settings(config: SidecarConfig) -> ProxySettings:
    settings = config.proxy_settings(
        scheme=b"http" if config.plain else b"https",
        via_name="sidecar",
        client_subject_header=config.client_subject_header.lower().encode(),
    )
    return replace(settings, hsts=f"max-age={config.hsts}".encode() if config.hsts else b"")


def load_certs(config: SidecarConfig) -> CertStore | None:
    if config.plain:
        return None
    settings = Settings(
        min_version=config.min_tls_version,
        ciphers=config.ciphers,
        client_ca_file=config.client_ca_file,
        client_auth=config.client_auth,
    )
    return CertStore.load([(config.cert_file, config.key_file), *config.extra_certs], settings)


class UpstreamProbe:
    """/readyz: ready only while the main container accepts connections."""

    def __init__(self, upstream: Upstream, also: Callable[[], str | None] | None = None) -> None:
        self.upstream = upstream
        self.also = also
        self._checked = 0.0
        self._reason: str | None = "not checked yet"

    async def __call__(self) -> str | None:
        reason = self.also() if self.also else None
        if reason is not None:
            return reason
        loop = asyncio.get_running_loop()
        if loop.time() - self._checked < READY_CACHE_SECONDS:
            return self._reason
        up = self.upstream
        try:
            async with asyncio.timeout(1.0):
                if up.path:
                    _, writer = await asyncio.open_unix_connection(up.path)
                else:
                    _, writer = await asyncio.open_connection(up.host, up.port)
            writer.close()
            self._reason = None
        except (OSError, TimeoutError) as exc:
            self._reason = f"upstream {up.url} does not answer: {exc or 'timeout'}"
        self._checked = loop.time()
        return self._reason


class Listener:
    """The client-facing side of one process: the proxy (or the tcp tunnel) on --listen."""

    def __init__(self, config: SidecarConfig, certs: CertStore | None) -> None:
        self.config = config
        self.certs = certs
        self.upstream = Upstream(config.upstream, proxy_settings(config))
        self.proxy = ProxyServer(
            self.upstream.settings,
            lambda _exchange, attempt: self.upstream if attempt == 0 else None,
            client_subject=subject_of if config.client_ca_file else None,
        )
        self.tunnels: set[TunnelClient] = set()
        self.server: asyncio.AbstractServer | None = None
        self.watcher: asyncio.Future[None] | None = None

    async def start(self, reuse_port: bool) -> None:
        config = self.config
        host, port = config.listen
        context = None
        if self.certs is not None:
            context = self.certs.front_context()
            count_handshake_failures(context, self.proxy.stats.handshake_failures)
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.BaseProtocol] = (
            (lambda: TunnelClient(self.upstream, self.tunnels))
            if config.mode == "tcp"
            else self.proxy.connection
        )
        # TLS starts on the first bytes, so that plain HTTP can get a 400 instead (not in
        # tcp mode) and every handshake's end is seen. It is bounded by the header timeout,
        # as nginx bounds it by client_header_timeout.
        if context is not None:
            factory = partial(
                FirstBytes,
                factory,
                context,
                config.header_timeout,
                self.proxy.stats.handshake_failures,
                answer_plain_http=config.mode == "http",
            )
        self.server = await loop.create_server(
            factory, host, port, reuse_port=reuse_port or None, backlog=4096
        )
        self.proxy.serving(self.server)
        if self.certs is not None:
            self.watcher = asyncio.ensure_future(self.certs.watch(config.cert_check_interval))

    async def drain(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        if self.config.mode == "tcp":
            if self.server is not None:
                self.server.close()
            for tunnel in list(self.tunnels):
                if tunnel.transport is not None:
                    tunnel.transport.close()
        else:
            await self.proxy.drain(self.config.drain_timeout)
        self.upstream.close()


async def serve_admin(
    config: SidecarConfig, health: Health, stats: Callable[[], ProxyStats], certs: CertStore | None
) -> list[web.AppRunner]:
    runners = [
        await start_site(admin_app(health, registry_for(stats, certs)), *config.admin_listen)
    ]
    if config.redirect_listen:
        runners.append(
            await start_site(redirect_app(config.redirect_https_port), *config.redirect_listen)
        )
    return runners


async def run(
    config: SidecarConfig, certs: CertStore | None, stop: asyncio.Event | None = None
) -> None:
    """One process: listener and admin port together."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    listener = Listener(config, certs)
    await listener.start(reuse_port=False)
    health = Health(check=UpstreamProbe(listener.upstream))
    runners = await serve_admin(config, health, lambda: listener.proxy.stats, certs)
    health.ready = True
    log.info(
        "listening on %s:%d (%s, %s) → %s; admin on %s:%d",
        *config.listen,
        "plain HTTP" if config.plain else "TLS",
        config.mode,
        config.upstream,
        *config.admin_listen,
    )
    await stop.wait()
    health.ready = False  # unready at once; then stop accepting and drain
    log.info("shutting down: draining for up to %.0fs", config.drain_timeout)
    await listener.drain()
    for runner in runners:
        await runner.cleanup()
    log.info("stopped")


def worker_main(config: SidecarConfig) -> Callable[[int, int], int]:
    """What each forked worker runs: the listener on the shared port, reporting counters."""

    def main(index: int, report_fd: int) -> int:
        install_fast_loop()

        async def serve() -> None:
            stop = asyncio.Event()
            stop_on_signals(stop)
            listener = Listener(config, load_certs(config))
            await listener.start(reuse_port=True)
            reporter = asyncio.ensure_future(
                report_forever(report_fd, lambda: listener.proxy.stats.snapshot())
            )
            await stop.wait()
            await listener.drain()
            reporter.cancel()

        asyncio.run(serve())
        return 0

    return main


async def supervise(config: SidecarConfig, certs: CertStore | None) -> None:
    """--workers N: fork the workers, serve the admin port for all of them."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    workers = Workers(config.workers, worker_main(config))
    workers.start()
    supervisor = asyncio.ensure_future(workers.supervise())
    upstream = Upstream(config.upstream, proxy_settings(config))
    health = Health(
        check=UpstreamProbe(
            upstream, also=lambda: None if workers.alive() else "a worker is restarting"
        )
    )
    runners = await serve_admin(
        config, health, lambda: ProxyStats.merged(workers.reports.values()), certs
    )
    watcher = asyncio.ensure_future(certs.watch(config.cert_check_interval)) if certs else None
    health.ready = True
    log.info(
        "%d workers on %s:%d → %s; admin on %s:%d",
        config.workers,
        *config.listen,
        config.upstream,
        *config.admin_listen,
    )
    await stop.wait()
    health.ready = False
    log.info("shutting down: draining the workers for up to %.0fs", config.drain_timeout)
    supervisor.cancel()
    if watcher is not None:
        watcher.cancel()
    await workers.stop(config.drain_timeout + 2.0)
    for runner in runners:
        await runner.cleanup()
    log.info("stopped")
