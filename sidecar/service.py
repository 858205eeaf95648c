"""The sidecar assembled: TLS listener on the shared engine, admin port, optional redirect
listener, certificate watcher; runs until SIGTERM, then drains."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from aiohttp import web

from podkit.admin import admin_app
from podkit.health import Health
from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.tunnel import TunnelClient
from sidecar.config import SidecarConfig
from sidecar.metrics import registry_for
from sidecar.redirect import redirect_app
from sidecar.tls import CertStore, Settings, subject_of

log = logging.getLogger("sidecar")
READY_CACHE_SECONDS = 1.0


def proxy_settings(config: SidecarConfig) -> ProxySettings:
    return ProxySettings(
        max_header_size=config.max_header_size,
        max_body_size=config.max_body_size,
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        keepalive_timeout=config.keepalive_timeout,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        scheme=b"http" if config.plain else b"https",
        trusted_proxies=config.trusted_proxies,
        forwarded=config.forwarded,
        via=b"1.1 sidecar" if config.via else b"",
        hsts=f"max-age={config.hsts}".encode() if config.hsts else b"",
        client_subject_header=config.client_subject_header.lower().encode(),
        access_log=config.access_log,
    )


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

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._checked = 0.0
        self._reason: str | None = "not checked yet"

    async def __call__(self) -> str | None:
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


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


async def run(
    config: SidecarConfig,
    certs: CertStore | None,
    *,
    reuse_port: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = proxy_settings(config)
    upstream = Upstream(config.upstream, settings)
    context: ssl.SSLContext | None = certs.front_context() if certs else None
    host, port = config.listen
    proxy = ProxyServer(
        settings,
        lambda _exchange, attempt: upstream if attempt == 0 else None,
        client_subject=subject_of if config.client_ca_file else None,
    )
    tunnels: set[TunnelClient] = set()
    server: asyncio.AbstractServer
    if config.mode == "tcp":
        server = await loop.create_server(
            lambda: TunnelClient(upstream, tunnels),
            host,
            port,
            ssl=context,
            reuse_port=reuse_port or None,
            backlog=4096,
        )
    else:
        server = await proxy.listen(host, port, ssl_context=context, reuse_port=reuse_port)
    health = Health(check=UpstreamProbe(upstream))
    runners = [
        await start_site(admin_app(health, registry_for(proxy.stats, certs)), *config.admin_listen)
    ]
    if config.redirect_listen:
        runners.append(
            await start_site(redirect_app(config.redirect_https_port), *config.redirect_listen)
        )
    watcher = asyncio.ensure_future(certs.watch(config.cert_check_interval)) if certs else None
    health.ready = True
    log.info(
        "listening on %s:%d (%s, %s) → %s; admin on %s:%d",
        host,
        port,
        "plain HTTP" if config.plain else "TLS",
        config.mode,
        config.upstream,
        *config.admin_listen,
    )
    await stop.wait()

    health.ready = False  # unready at once; then stop accepting and drain
    log.info("shutting down: draining for up to %.0fs", config.drain_timeout)
    if watcher is not None:
        watcher.cancel()
    if config.mode == "tcp":
        server.close()
        for tunnel in list(tunnels):
            if tunnel.transport is not None:
                tunnel.transport.close()
    else:
        await proxy.drain(config.drain_timeout)
    for runner in runners:
        await runner.cleanup()
    upstream.close()
    log.info("stopped")
