"""One upstream group as it runs: its addresses, its balancer built from them (method, hash
key, outlier ejection, the engine's settings for its peers) and its active health checks.
A reload or a DNS change rebuilds the balancer from the same state, so that peers keep what
they learnt; ambassador.groups holds the group as configured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from http.cookies import SimpleCookie
from time import monotonic

from ambassador.balancer import Balancer
from ambassador.groups import UpstreamGroup
from ambassador.health import HealthChecker, connect_probe, probe
from ambassador.outlier import Ejector
from ambassador.peers import Addresses, build_peers, resolve
from podkit.proxy.head import RequestHead
from podkit.proxy.settings import ProxySettings


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

    async def apply(
        self, group: UpstreamGroup, base: ProxySettings, addresses: Addresses | None = None
    ) -> None:
        """Take `group` (the same, or as reloaded) on `addresses` (resolved when not given):
        a new balancer over peers that keep their state; health checks restarted only when
        their settings changed."""
        if addresses is None:
            addresses = await resolve(group.servers, self.addresses)
        peers = build_peers(
            group.servers,
            addresses,
            settings_for(base, group),
            old=self.balancer.peers if self.started else None,
            now=monotonic(),
        )
        key = hash_key(group.hash_key) if group.method == "hash" else None
        ejector = Ejector(group.outlier) if group.outlier.enabled else None
        self.balancer = Balancer(peers, group.method, hash_key=key, ejector=ejector)
        restart = health_of(group) != health_of(self.group) or not self.started
        self.group, self.addresses, self.started = group, addresses, True
        if restart:
            self.start_health_checks()

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
