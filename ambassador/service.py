"""The ambassador assembled: the listener on the shared engine with a balancer as its `pick`,
DNS re-resolution, active health checks, config reload (file change or SIGHUP), and the
admin port with /upstreams; run by podkit.runner (one process, or --workers N) until
SIGTERM, then drained."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from http.cookies import SimpleCookie
from time import monotonic
from typing import Any

from ambassador.balancer import Balancer, Tried
from ambassador.config import AmbassadorConfig, UpstreamGroup
from ambassador.health import HealthChecker
from ambassador.metrics import registry_for
from ambassador.peers import Addresses, build_peers, resolve
from podkit.admin_http import AdminServer, Request, Response, admin_routes
from podkit.health import Health
from podkit.options import OptionError
from podkit.proxy import ProxyServer, Upstream
from podkit.proxy.head import RequestHead
from podkit.proxy.stats import ProxyStats
from podkit.runner import Closer, Report, Reports, serve

log = logging.getLogger("ambassador")


def hash_key(spec: str) -> Callable[[RequestHead], bytes]:
    """The request's key for --method hash: the client's address, a header or a cookie."""
    kind, _, name = spec.partition(":")
    if kind == "header":
        wanted = name.lower().encode()
        return lambda head: head.header(wanted) or b""
    if kind == "cookie":

        def cookie(head: RequestHead) -> bytes:
            for n, v in head.headers:
                if n.lower() == b"cookie":
                    morsel = SimpleCookie(v.decode("latin-1")).get(name)
                    if morsel is not None:
                        return morsel.value.encode()
            return b""

        return cookie
    return lambda head: head.peer.encode()


class Ambassador:
    def __init__(self, config: AmbassadorConfig) -> None:
        self.config = config
        self.settings = config.proxy_settings(
            scheme=b"http",
            via_name="ambassador",
            retry_non_idempotent=config.next_upstream_non_idempotent,
        )
        # The file's signature before reading it: a change made while starting is not lost.
        self._config_signature = self._signature() if config.config else None
        self.group = config.group()
        self.addresses: Addresses = {}
        self.balancer = Balancer([])
        self.proxy = ProxyServer(self.settings, self.pick)
        self.health_task: asyncio.Future[None] | None = None
        self.tasks: list[asyncio.Future[None]] = []
        self._lock = asyncio.Lock()

    # -- the engine's seam ------------------------------------------------------------------
    def pick(self, head: RequestHead, attempt: int) -> Upstream | None:
        tried = head.pick_state
        if not isinstance(tried, Tried):
            tried = head.pick_state = Tried()
        limit = self.config.next_upstream_tries
        if attempt and limit and attempt >= limit:
            return None
        deadline = self.config.next_upstream_timeout
        if attempt and deadline and monotonic() - head.started > deadline:
            return None
        peer = self.balancer.pick(tried, head)
        return peer.upstream if peer is not None else None

    # -- applying an upstream group ------------------------------------------------------------
    async def apply(self, group: UpstreamGroup, addresses: Addresses | None = None) -> None:
        if addresses is None:
            addresses = await resolve(group.servers, self.addresses)
        peers = build_peers(group.servers, addresses, self.settings, old=self.balancer.peers)
        key = hash_key(group.hash_key) if group.method == "hash" else None
        self.balancer = Balancer(peers, group.method, hash_key=key)
        changed_health = (
            group.health_path,
            group.health_interval,
            group.health_timeout,
            group.health_rise,
            group.health_fall,
        ) != (
            self.group.health_path,
            self.group.health_interval,
            self.group.health_timeout,
            self.group.health_rise,
            self.group.health_fall,
        )
        self.group, self.addresses = group, addresses
        if changed_health or self.health_task is None:
            self._restart_health_checks()

    def _restart_health_checks(self) -> None:
        if self.health_task is not None:
            self.health_task.cancel()
            self.health_task = None
        group = self.group
        if group.health_path:
            checker = HealthChecker(
                lambda: self.balancer.peers,
                group.health_path,
                group.health_interval,
                group.health_timeout,
                group.health_rise,
                group.health_fall,
            )
            self.health_task = asyncio.ensure_future(checker.run())
        else:
            for peer in self.balancer.peers:
                peer.healthy = True

    async def reload_config(self, why: str) -> None:
        async with self._lock:
            try:
                group = self.config.group()
            except OptionError as exc:
                log.error("new configuration rejected (%s), keeping the old one: %s", why, exc)
                return
            await self.apply(group)
            log.info("configuration reloaded (%s): %s", why, describe(self.balancer))

    async def watch_config(self) -> None:
        path = self.config.config
        while True:
            await asyncio.sleep(self.config.config_check_interval)
            try:
                signature = self._signature()
            except OSError as exc:
                log.error("cannot read %s, keeping the configuration: %s", path, exc)
                continue
            if signature != self._config_signature:
                self._config_signature = signature
                await self.reload_config(f"{path} changed")

    def _signature(self) -> tuple[int, int]:
        st = os.stat(self.config.config)  # a ConfigMap update swaps a symlink: inode, mtime
        return (st.st_ino, st.st_mtime_ns)

    async def resolve_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.resolve_interval)
            async with self._lock:
                addresses = await resolve(self.group.servers, self.addresses)
                if addresses != self.addresses:
                    log.info("upstream addresses changed: %s", addresses)
                    await self.apply(self.group, addresses)

    # -- admin -----------------------------------------------------------------------------------
    def upstreams_json(self) -> list[dict[str, object]]:
        now = self.balancer.clock()
        return [
            {
                "server": p.name,
                "address": p.upstream.url,
                "weight": p.weight,
                "effective_weight": p.effective_weight,
                "current_weight": p.current_weight,
                "backup": p.backup,
                "down": p.down,
                "max_fails": p.max_fails,
                "fail_timeout": p.fail_timeout,
                "fails": p.fails,
                "healthy": p.healthy,
                "available": p.available(now),
                "active_requests": p.conns,
                "max_conns": p.max_conns,
                "responses": {str(k): v for k, v in p.responses.items()},
                "failures": p.failures,
                "latency": {"counts": p.latency.counts, "total": p.latency.total},
            }
            for p in self.balancer.peers
        ]

    # -- running -----------------------------------------------------------------------------
    async def start(self, reuse_port: bool = False) -> None:
        await self.apply(self.group)
        if self.config.config and self.config.config_check_interval:
            self.tasks.append(asyncio.ensure_future(self.watch_config()))
        if self.config.resolve_interval:
            self.tasks.append(asyncio.ensure_future(self.resolve_forever()))
        await self.proxy.listen(*self.config.listen, reuse_port=reuse_port)

    def reload(self) -> None:
        """SIGHUP: read the configuration again."""
        self.tasks.append(asyncio.ensure_future(self.reload_config("SIGHUP")))

    def report(self) -> Report:
        return {
            "proxy": self.proxy.stats.snapshot(),
            "peers": self.upstreams_json(),
            "available": self.balancer.any_available(),
        }

    async def drain(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.health_task is not None:
            self.health_task.cancel()
        await self.proxy.drain(self.config.drain_timeout)
        for peer in self.balancer.peers:
            peer.upstream.close()


def describe(balancer: Balancer) -> str:
    return (
        ", ".join(
            f"{p.upstream.url} weight={p.weight}{' backup' if p.backup else ''}"
            for p in balancer.peers
        )
        or "no peers"
    )


Views = list[dict[str, Any]]


def merge_views(per_worker: list[Views]) -> Views:
    """The peers as the workers see them, added up: counters summed; a peer counts as up or
    healthy only if every worker sees it so, and shows the lowest effective weight."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for views in per_worker:
        for view in views:
            key = (view["server"], view["address"])
            into = merged.get(key)
            if into is None:
                merged[key] = json.loads(json.dumps(view))  # a deep copy
                continue
            for name in ("available", "healthy"):
                into[name] = into[name] and view[name]
            into["effective_weight"] = min(into["effective_weight"], view["effective_weight"])
            into["fails"] = max(into["fails"], view["fails"])
            into["active_requests"] += view["active_requests"]
            for table in ("responses", "failures"):
                for k, n in view[table].items():
                    into[table][k] = into[table].get(k, 0) + n
            into["latency"]["counts"] = [
                a + b
                for a, b in zip(into["latency"]["counts"], view["latency"]["counts"], strict=True)
            ]
            into["latency"]["total"] += view["latency"]["total"]
    return list(merged.values())


async def serve_admin(
    config: AmbassadorConfig,
    health: Health,
    stats: Callable[[], ProxyStats],
    views: Callable[[], Views],
) -> AdminServer:
    routes = admin_routes(health, registry_for(stats, views))

    async def upstreams(_request: Request) -> Response:
        return Response(200, json.dumps(views(), indent=2).encode(), "application/json")

    routes["/upstreams"] = upstreams
    server = AdminServer(routes)
    await server.start(*config.admin_listen)
    return server


class AmbassadorApp:
    """The ambassador as podkit.runner drives it. Each worker balances on its own, as
    nginx's workers do without a shared `zone`."""

    def __init__(self, config: AmbassadorConfig) -> None:
        self.config = config
        self.workers = config.workers
        self.drain_timeout = config.drain_timeout

    def serving(self, in_worker: bool) -> Ambassador:
        return Ambassador(self.config)

    async def start_admin(self, health: Health, reports: Reports) -> list[Closer]:
        def stats() -> ProxyStats:
            return ProxyStats.merged(report["proxy"] for report in reports())

        def views() -> Views:
            return merge_views([report["peers"] for report in reports()])

        server = await serve_admin(self.config, health, stats, views)
        return [server.close]

    async def readiness(self, reports: list[Report]) -> str | None:
        return None if any(r["available"] for r in reports) else "no upstream is available"

    def describe(self) -> str:
        config = self.config
        return "listening on {}:{} → {}; admin on {}:{}".format(
            *config.listen,
            ", ".join(server.url for server in config.group().servers) or "no servers",
            *config.admin_listen,
        )


async def run(config: AmbassadorConfig, stop: asyncio.Event | None = None) -> int:
    """One process, in this event loop (tests run it in-process)."""
    return await serve(AmbassadorApp(config), stop)
