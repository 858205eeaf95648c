"""The sidecar assembled: the TLS listener on the shared engine, the admin port, the optional
redirect listener and the certificate watcher, run by podkit.runner (one process, or
--workers N sharing the port) until SIGTERM, then drained.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from functools import partial

from podkit.admin_http import AdminServer, admin_routes
from podkit.health import Health
from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.proxy_header import ProxyHeaderReader
from podkit.proxy.stats import ProxyStats
from podkit.proxy.tunnel import TcpTunnel, TunnelEnd
from podkit.runner import Closer, Report, Reports
from sidecar.admission import Gate, Refusals
from sidecar.config import SidecarConfig
from sidecar.first_bytes import FirstBytes
from sidecar.identity import AllowList, Identities, identity_header_names
from sidecar.metrics import registry_for
from sidecar.proxy_send import preamble
from sidecar.redirect import redirect_handler
from sidecar.tls import CertStore, Settings, count_handshake_failures

log = logging.getLogger("sidecar")
READY_CACHE_SECONDS = 1.0


def proxy_settings(config: SidecarConfig) -> ProxySettings:
    return config.proxy_settings(
        scheme=b"http" if config.plain else b"https",
        via_name="sidecar",
        identity_headers=identity_header_names(config.client_subject_header),
        hsts=f"max-age={config.hsts}".encode() if config.hsts else b"",
    )


def identities(config: SidecarConfig) -> Identities:
    allow = AllowList.of(config.allow_cn, config.allow_ou, config.allow_dns, config.allow_uri)
    return Identities(config.client_cert_header, config.client_subject_header, allow)


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


class Listener:
    """The client-facing side of one process: the proxy (or the tcp tunnel) on --listen."""

    def __init__(self, config: SidecarConfig, certs: CertStore | None) -> None:
        self.config = config
        self.certs = certs
        self.upstream = Upstream(config.upstream, proxy_settings(config))
        self.identities = identities(config)
        self.refusals = Refusals()
        self.proxy = ProxyServer(
            self.upstream.settings,
            lambda _head, attempt: self.upstream if attempt == 0 else None,
            client_identity=self.identities.lines if config.client_ca_file else None,
        )
        self.tunnel = TcpTunnel(
            self.upstream, self.proxy.stats, preamble if config.send_proxy_v2 else None
        )
        self.context: ssl.SSLContext | None = None
        self.server: asyncio.AbstractServer | None = None
        self.watcher: asyncio.Future[None] | None = None

    def protocol(self, source: str = "", port: int = 0) -> asyncio.BaseProtocol:
        """A client connection's protocols, outermost first: TLS from its first bytes, the
        allow-list gate, then the engine or the tcp tunnel. `source`, `port`: the client's
        address from a PROXY protocol header ("" without one)."""
        config = self.config
        app: Callable[[], asyncio.BaseProtocol] = partial(self.proxy.connection, source)
        if config.mode == "tcp":
            app = partial(self.tunnel_end, (source, port) if source else None)
        if not self.identities.allow.empty:
            app = partial(
                Gate,
                app,
                self.identities,
                self.refusals,
                http=config.mode == "http",
                head_timeout=config.header_timeout,
                max_head=config.max_header_size,
            )
        # TLS starts on the first bytes, so that plain HTTP can get a 400 instead (not in
        # tcp mode) and every handshake's end is seen. It is bounded by the header timeout,
        # as nginx bounds it by client_header_timeout.
        if self.context is None:
            return app()
        return FirstBytes(
            app,
            self.context,
            config.header_timeout,
            self.proxy.stats.handshake_failures,
            answer_plain_http=config.mode == "http",
        )

    def tunnel_end(self, source: tuple[str, int] | None) -> TunnelEnd:
        end = self.tunnel.connection()
        end.state = source  # for --send-proxy-v2 (proxy_send.preamble)
        return end

    async def start(self, reuse_port: bool) -> None:
        config = self.config
        host, port = config.listen
        if self.certs is not None:
            self.context = self.certs.front_context()
            count_handshake_failures(self.context, self.proxy.stats.handshake_failures)
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.BaseProtocol] = self.protocol
        if config.proxy_protocol_from:  # the PROXY header comes before TLS
            factory = partial(
                ProxyHeaderReader,
                self.protocol,
                config.proxy_protocol_from,
                config.header_timeout,
                self.proxy.stats,
            )
        self.server = await loop.create_server(
            factory, host, port, reuse_port=reuse_port or None, backlog=4096
        )
        self.proxy.serving(self.server)
        if self.certs is not None:
            self.watcher = asyncio.ensure_future(self.certs.watch(config.cert_check_interval))

    def report(self) -> Report:
        return {"proxy": self.proxy.stats.snapshot(), "client_cert_refused": self.refusals.count}

    def reload(self) -> None:
        """SIGHUP: reload every certificate pair and the client CA bundle, changed or not."""
        if self.certs is not None:
            self.certs.check(force=True)

    async def drain(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        if self.config.mode == "tcp":
            if self.server is not None:
                self.server.close()
            self.tunnel.close()
        else:
            await self.proxy.drain(self.config.drain_timeout)
        self.upstream.close()


class SidecarApp:
    """The sidecar as podkit.runner drives it."""

    def __init__(self, config: SidecarConfig, certs: CertStore | None) -> None:
        self.config = config
        self.certs = certs
        self.workers = config.workers
        self.drain_timeout = config.drain_timeout
        self.probe = UpstreamProbe(Upstream(config.upstream, proxy_settings(config)))

    def serving(self, in_worker: bool) -> Listener:
        # A worker loads its own certificates: it watches and reloads them itself.
        return Listener(self.config, load_certs(self.config) if in_worker else self.certs)

    async def start_admin(self, health: Health, reports: Reports) -> list[Closer]:
        config, certs = self.config, self.certs

        def stats() -> ProxyStats:
            return ProxyStats.merged(report["proxy"] for report in reports())

        def refused() -> int:
            return sum(int(report.get("client_cert_refused", 0)) for report in reports())

        registry = registry_for(stats, certs, refused)
        servers = [AdminServer(admin_routes(health, registry))]
        await servers[0].start(*config.admin_listen)
        if config.redirect_listen:
            servers.append(AdminServer({}, fallback=redirect_handler(config.redirect_https_port)))
            await servers[1].start(*config.redirect_listen)
        closers: list[Closer] = [server.close for server in servers]
        if certs is not None and config.workers > 1:
            # The workers watch their own copies; this one keeps /metrics' expiry current.
            watcher = asyncio.ensure_future(certs.watch(config.cert_check_interval))

            async def stop_watching() -> None:
                watcher.cancel()

            closers.append(stop_watching)
        return closers

    async def readiness(self, reports: list[Report]) -> str | None:
        return await self.probe()

    def describe(self) -> str:
        config = self.config
        return "listening on {}:{} ({}, {}) → {}; admin on {}:{}".format(
            *config.listen,
            "plain HTTP" if config.plain else "TLS",
            config.mode,
            config.upstream,
            *config.admin_listen,
        )
