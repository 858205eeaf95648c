"""The ambassador assembled: the listener on the shared engine with a balancer as its `pick`
(or, with --mode tcp, the engine's TcpTunnel asking it through ambassador.tcp), DNS
re-resolution, active health checks, config reload (file change or SIGHUP), and the
admin port with /upstreams; run by podkit.runner (one process, or --workers N) until
SIGTERM, then drained."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from time import monotonic
from typing import Any

from ambassador.admin import WriteFence, write_handler
from ambassador.balancer import Balancer, Tried
from ambassador.config import AmbassadorConfig
from ambassador.group_state import GroupState
from ambassador.metrics import registry_for
from ambassador.peers import resolve
from ambassador.routes import Layout, Route
from ambassador.tcp import BalancedTcp
from ambassador.upstreams import Views, change_peers, describe, merge_views, views_of
from podkit.admin_http import AdminServer, Request, Response, admin_routes
from podkit.health import Health
from podkit.options import OptionError
from podkit.proxy import ProxyServer, Upstream
from podkit.proxy.head import RequestHead
from podkit.proxy.stats import ProxyStats
from podkit.proxy.tunnel import TcpTunnel
from podkit.runner import Closer, Report, Reports, serve

log = logging.getLogger("ambassador")


class Ambassador:
    def __init__(self, config: AmbassadorConfig) -> None:
        self.config = config
        self.settings = config.proxy_settings(scheme=b"http", via_name="ambassador")
        # The file's signature before reading it: a change made while starting is not lost.
        self._config_signature = self._signature() if config.config else None
        self.layout = config.layout()
        self.groups: dict[str, GroupState] = {}
        self.routes: tuple[tuple[Route, GroupState], ...] = ()
        self.tcp = config.mode == "tcp"
        self.default = GroupState(self.layout.default, self.tcp)
        self.proxy = ProxyServer(self.settings, self.pick)
        # tcp mode: the tunnel, counting into the proxy's stats (bytes, connections)
        self.tunnel = TcpTunnel(
            BalancedTcp(lambda: (self.default.group, self.default.balancer)).upstreams(),
            self.proxy.stats,
        )
        self.server: asyncio.AbstractServer | None = None
        self.tasks: list[asyncio.Future[None]] = []
        self._lock = asyncio.Lock()

    @property
    def balancer(self) -> Balancer:
        return self.default.balancer

    # -- the engine's seam ------------------------------------------------------------------
    def route(self, head: RequestHead) -> GroupState:
        for route, state in self.routes:
            if route.matches(head):
                return state
        return self.default

    def pick(self, head: RequestHead, attempt: int) -> Upstream | None:
        tried = head.pick_state
        if not isinstance(tried, Tried):
            tried = head.pick_state = Tried(self.route(head) if self.routes else self.default)
        state = tried.group
        assert isinstance(state, GroupState)
        group = state.group
        limit = group.next_upstream_tries
        if attempt and limit and attempt >= limit:
            return None
        deadline = group.next_upstream_timeout
        if attempt and deadline and monotonic() - head.started > deadline:
            return None
        peer = state.balancer.pick(tried, head)
        return peer.upstream if peer is not None else None

    # -- applying the groups and routes ------------------------------------------------------
    async def apply(self, layout: Layout) -> None:
        states: dict[str, GroupState] = {}
        for name, group in layout.groups.items():
            state = self.groups.get(name) or (self.default if name == "default" else None)
            if state is None:
                state = GroupState(group, self.tcp)
            await state.apply(group, self.settings)
            states[name] = state
        for name, gone in self.groups.items():
            if name not in states:
                gone.stop_health_checks()
                for peer in gone.balancer.peers:
                    peer.upstream.close()
        self.groups, self.default, self.layout = states, states["default"], layout
        self.routes = tuple((route, states[route.group]) for route in layout.routes)

    async def reload_config(self, why: str) -> None:
        async with self._lock:
            try:
                layout = self.config.layout()
            except OptionError as exc:
                log.error("new configuration rejected (%s), keeping the old one: %s", why, exc)
                return
            await self.apply(layout)
            log.info("configuration reloaded (%s): %s", why, self.describe())

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
                for state in self.groups.values():
                    addresses = await resolve(state.group.servers, state.addresses)
                    if addresses != state.addresses:
                        log.info("upstream addresses changed: %s", addresses)
                        await state.apply(state.group, self.settings, addresses)

    def describe(self) -> str:
        return "; ".join(
            f"{name}: {describe(state.balancer)}"
            if len(self.groups) > 1
            else describe(state.balancer)
            for name, state in self.groups.items()
        )

    # -- admin -----------------------------------------------------------------------------------
    def balancers(self) -> dict[str, Balancer]:
        return {name: state.balancer for name, state in self.groups.items()}

    def upstreams_json(self) -> list[dict[str, object]]:
        return views_of(self.balancers())

    def change(self, change: dict[str, Any]) -> Views:
        """An admin write (PATCH /upstreams): drain/down on the peers it names."""
        return change_peers(self.balancers(), change)

    # -- running -----------------------------------------------------------------------------
    async def start(self, reuse_port: bool = False) -> None:
        await self.apply(self.layout)
        if self.config.config and self.config.config_check_interval:
            self.tasks.append(asyncio.ensure_future(self.watch_config()))
        if self.config.resolve_interval:
            self.tasks.append(asyncio.ensure_future(self.resolve_forever()))
        if self.tcp:
            host, port = self.config.listen
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(
                self.tunnel.connection, host, port, reuse_port=reuse_port or None, backlog=4096
            )
        else:
            await self.proxy.listen(*self.config.listen, reuse_port=reuse_port)

    def reload(self) -> None:
        """SIGHUP: read the configuration again."""
        self.tasks.append(asyncio.ensure_future(self.reload_config("SIGHUP")))

    def report(self) -> Report:
        return {
            "proxy": self.proxy.stats.snapshot(),
            "peers": self.upstreams_json(),
            "available": any(s.balancer.any_available() for s in self.groups.values()),
        }

    async def drain(self) -> None:
        for task in self.tasks:
            task.cancel()
        for state in self.groups.values():
            state.stop_health_checks()
        if self.server is not None:  # tcp mode: stop accepting, let connections end
            self.server.close()
            await self.tunnel.drain(self.config.drain_timeout)
        else:
            await self.proxy.drain(self.config.drain_timeout)
        for state in self.groups.values():
            for peer in state.balancer.peers:
                peer.upstream.close()


async def serve_admin(
    config: AmbassadorConfig,
    health: Health,
    stats: Callable[[], ProxyStats],
    views: Callable[[], Views],
    change: Callable[[dict[str, Any]], Views] | None = None,
) -> AdminServer:
    fence = WriteFence(config.admin_token if config.admin_token_file else lambda: "")
    routes = admin_routes(health, registry_for(stats, views, lambda: fence.refused))

    async def upstreams(_request: Request) -> Response:
        return Response(200, json.dumps(views(), indent=2).encode(), "application/json")

    routes["/upstreams"] = upstreams
    server = AdminServer(routes, writes={"/upstreams": write_handler(fence, change)})
    await server.start(*config.admin_listen)
    return server


class AmbassadorApp:
    """The ambassador as podkit.runner drives it. Each worker balances on its own, as
    nginx's workers do without a shared `zone`."""

    def __init__(self, config: AmbassadorConfig) -> None:
        self.config = config
        self.workers = config.workers
        self.drain_timeout = config.drain_timeout
        self.local: Ambassador | None = None  # the one serving, without workers

    def serving(self, in_worker: bool) -> Ambassador:
        ambassador = Ambassador(self.config)
        if not in_worker:
            self.local = ambassador
        return ambassador

    async def start_admin(self, health: Health, reports: Reports) -> list[Closer]:
        def stats() -> ProxyStats:
            return ProxyStats.merged(report["proxy"] for report in reports())

        def views() -> Views:
            return merge_views([report["peers"] for report in reports()])

        # Run-time changes reach the one ambassador there is; workers have no way back yet.
        local = self.local if self.workers == 1 else None
        change = local.change if local is not None else None
        server = await serve_admin(self.config, health, stats, views, change)
        return [server.close]

    async def readiness(self, reports: list[Report]) -> str | None:
        return None if any(r["available"] for r in reports) else "no upstream is available"

    def describe(self) -> str:
        config = self.config
        return "listening on {}:{}{} → {}; admin on {}:{}".format(
            *config.listen,
            " (tcp)" if config.mode == "tcp" else "",
            ", ".join(
                server.url for group in config.layout().groups.values() for server in group.servers
            )
            or "no servers",
            *config.admin_listen,
        )


async def run(config: AmbassadorConfig, stop: asyncio.Event | None = None) -> int:
    """One process, in this event loop (tests run it in-process)."""
    return await serve(AmbassadorApp(config), stop)
