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
from dataclasses import replace
from http.cookies import SimpleCookie
from time import monotonic
from typing import Any

from ambassador.admin import WriteFence, write_handler
from ambassador.balancer import Balancer, Peer, Tried
from ambassador.config import AmbassadorConfig, UpstreamGroup
from ambassador.health import HealthChecker, connect_probe, probe
from ambassador.metrics import registry_for
from ambassador.outlier import Ejector
from ambassador.peers import Addresses, build_peers, resolve
from ambassador.routes import Layout, Route
from ambassador.tcp import BalancedTcp
from podkit.admin_http import AdminServer, Request, Response, admin_routes
from podkit.health import Health
from podkit.options import OptionError
from podkit.proxy import ProxyServer, ProxySettings, Upstream
from podkit.proxy.head import RequestHead
from podkit.proxy.stats import ProxyStats
from podkit.proxy.tunnel import TcpTunnel
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


class GroupState:
    """One upstream group as it runs: its balancer, addresses, health checks and settings;
    kept across reloads, so that its peers keep what they learnt."""

    def __init__(self, group: UpstreamGroup, tcp: bool = False) -> None:
        self.group = group
        self.tcp = tcp  # tcp mode: the active checks are TCP connects
        self.addresses: Addresses = {}
        self.balancer = Balancer([])
        self.health_task: asyncio.Future[None] | None = None
        self.started = False

    def stop_health_checks(self) -> None:
        if self.health_task is not None:
            self.health_task.cancel()
            self.health_task = None

    def start_health_checks(self) -> None:
        self.stop_health_checks()
        group = self.group
        if group.health_path or (self.tcp and group.health_interval > 0):
            checker = HealthChecker(
                lambda: self.balancer.peers,
                group.health_path,
                group.health_interval,
                group.health_timeout,
                group.health_rise,
                group.health_fall,
                check=connect_probe if self.tcp else probe,
            )
            self.health_task = asyncio.ensure_future(checker.run())
        else:
            for peer in self.balancer.peers:
                peer.healthy = True


def health_of(group: UpstreamGroup) -> tuple[object, ...]:
    return (
        group.health_path,
        group.health_interval,
        group.health_timeout,
        group.health_rise,
        group.health_fall,
    )


def settings_for(base: ProxySettings, group: UpstreamGroup) -> ProxySettings:
    """The engine's settings for the group's upstreams: its timeouts and next_upstream."""
    return replace(
        base,
        connect_timeout=group.connect_timeout,
        read_timeout=group.read_timeout,
        send_timeout=group.send_timeout,
        next_upstream=group.next_upstream_mask,
        next_upstream_statuses=group.next_upstream_statuses,
        retry_non_idempotent="non_idempotent" in group.next_upstream,
    )


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
            await self.apply_group(state, group)
            states[name] = state
        for name, gone in self.groups.items():
            if name not in states:
                gone.stop_health_checks()
                for peer in gone.balancer.peers:
                    peer.upstream.close()
        self.groups, self.default, self.layout = states, states["default"], layout
        self.routes = tuple((route, states[route.group]) for route in layout.routes)

    async def apply_group(
        self, state: GroupState, group: UpstreamGroup, addresses: Addresses | None = None
    ) -> None:
        if addresses is None:
            addresses = await resolve(group.servers, state.addresses)
        peers = build_peers(
            group.servers,
            addresses,
            settings_for(self.settings, group),
            old=state.balancer.peers if state.started else None,
            now=monotonic(),
        )
        key = hash_key(group.hash_key) if group.method == "hash" else None
        ejector = Ejector(group.outlier) if group.outlier.enabled else None
        state.balancer = Balancer(peers, group.method, hash_key=key, ejector=ejector)
        restart = health_of(group) != health_of(state.group) or not state.started
        state.group, state.addresses, state.started = group, addresses, True
        if restart:
            state.start_health_checks()

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
                        await self.apply_group(state, state.group, addresses)

    def describe(self) -> str:
        return "; ".join(
            f"{name}: {describe(state.balancer)}"
            if len(self.groups) > 1
            else describe(state.balancer)
            for name, state in self.groups.items()
        )

    # -- admin -----------------------------------------------------------------------------------
    def upstreams_json(self) -> list[dict[str, object]]:
        return [
            peer_view(name, p, state.balancer.clock())
            for name, state in self.groups.items()
            for p in state.balancer.peers
        ]

    def change(self, change: dict[str, Any]) -> list[dict[str, object]]:
        """An admin write: set drain/down on the peers it names (all groups, or `group`)."""
        changed = []
        now = monotonic()
        for name, state in self.groups.items():
            if change.get("group", name) != name:
                continue
            for peer in state.balancer.peers:
                if change.get("server", peer.name) != peer.name:
                    continue
                if change.get("address", peer.upstream.url) != peer.upstream.url:
                    continue
                was_out = peer.drain or peer.down
                peer.drain = change.get("drain", peer.drain)
                peer.down = change.get("down", peer.down)
                if peer.drain or peer.down:
                    peer.upstream.close()  # idle connections: those in flight finish
                elif was_out:
                    peer.start_slow(now)
                changed.append(peer_view(name, peer, now))
        return changed

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


def peer_view(group: str, p: Peer, now: float) -> dict[str, object]:
    ejected = p.ejected_until > now
    return {
        "group": group,
        "server": p.name,
        "address": p.upstream.url,
        "weight": p.weight,
        "effective_weight": p.effective_weight,
        "current_weight": p.current_weight,
        "backup": p.backup,
        "down": p.down,
        "drain": p.drain,
        "max_fails": p.max_fails,
        "fail_timeout": p.fail_timeout,
        "fails": p.fails,
        "healthy": p.healthy,
        "available": p.available(now),
        "slow_start": p.slow_start,
        "weight_share": round(p.share(now), 4) if not ejected else 0.0,
        "ejected": ejected,
        "ejected_for": round(p.ejected_until - now, 3) if ejected else 0.0,
        "ejections": p.ejections_total,
        "active_requests": p.conns,
        "max_conns": p.max_conns,
        "responses": {str(k): v for k, v in p.responses.items()},
        "failures": p.failures,
        "latency": {"counts": p.latency.counts, "total": p.latency.total},
        "connections": p.connections,
        "sent_bytes": p.sent_bytes,
        "received_bytes": p.received_bytes,
    }


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
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for views in per_worker:
        for view in views:
            key = (view.get("group", ""), view["server"], view["address"])
            into = merged.get(key)
            if into is None:
                merged[key] = json.loads(json.dumps(view))  # a deep copy
                continue
            for name in ("available", "healthy"):
                into[name] = into[name] and view[name]
            into["effective_weight"] = min(into["effective_weight"], view["effective_weight"])
            into["fails"] = max(into["fails"], view["fails"])
            into["weight_share"] = min(into["weight_share"], view["weight_share"])
            into["ejected"] = into["ejected"] or view["ejected"]
            into["ejections"] += view["ejections"]
            for name in ("active_requests", "connections", "sent_bytes", "received_bytes"):
                into[name] += view[name]
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
