"""From configured servers to peers: host names resolved, one peer per address (as nginx
does when a name has several addresses: a Kubernetes headless Service), and resolved again
every few seconds, keeping what a peer has learnt when its address stays."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

from ambassador.balancer import Peer
from ambassador.groups import ServerSpec
from podkit.proxy.settings import ProxySettings
from podkit.proxy.upstream import Upstream

log = logging.getLogger(__name__)

Addresses = dict[str, list[str]]  # server url → its addresses (empty for unix sockets)


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(servers: tuple[ServerSpec, ...], previous: Addresses | None = None) -> Addresses:
    """Addresses for each server. A name that does not resolve keeps its last good set (or,
    the first time, stays empty, so the server is out until it resolves)."""
    loop = asyncio.get_running_loop()
    out: Addresses = {}
    for spec in servers:
        host = spec.host
        if not host or is_literal(host):
            out[spec.url] = [host] if host else []
            continue
        try:
            infos = await loop.getaddrinfo(host, spec.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            kept = (previous or {}).get(spec.url, [])
            log.error("cannot resolve %s (%s); keeping %s", host, exc, kept or "nothing")
            out[spec.url] = kept
            continue
        out[spec.url] = sorted({str(info[4][0]) for info in infos})
    return out


def configured(spec: ServerSpec) -> tuple[object, ...]:
    return (
        spec.weight,
        spec.max_fails,
        spec.fail_timeout,
        spec.backup,
        spec.down,
        spec.max_conns,
        spec.slow_start,
        spec.drain,
    )


def build_peers(
    servers: tuple[ServerSpec, ...],
    addresses: Addresses,
    settings: ProxySettings,
    old: list[Peer] | None = None,
    now: float = 0.0,
) -> list[Peer]:
    """Peers for the servers; a peer whose server, address and parameters are unchanged is
    kept as it was (its pool, counters, health, and a drain set through the admin port), so a
    reload or a re-resolution drops no state. A peer added then (`old` given) slow-starts."""
    kept = {(p.name, p.upstream.url): p for p in old or []}
    peers: list[Peer] = []
    for spec in servers:
        targets = addresses.get(spec.url, [])
        urls = (
            [spec.url]
            if not spec.host
            else [f"http://{f'[{a}]' if ':' in a else a}:{spec.port}" for a in targets]
        )
        for url in urls:
            existing = kept.pop((spec.url, url), None)
            if existing is not None:
                existing.upstream.settings = settings  # the group's timeouts and retries
                if existing.configured == configured(spec):
                    peers.append(existing)
                    continue
            upstream = existing.upstream if existing else Upstream(url, settings)
            peer = Peer(
                name=spec.url,
                upstream=upstream,
                weight=spec.weight,
                max_fails=spec.max_fails,
                fail_timeout=spec.fail_timeout,
                backup=spec.backup,
                down=spec.down,
                max_conns=spec.max_conns,
                slow_start=spec.slow_start,
                drain=spec.drain,
                configured=configured(spec),
            )
            if old is not None and existing is None:
                peer.start_slow(now)
            peers.append(peer)
    for gone in kept.values():
        gone.upstream.close()  # idle connections only: exchanges in flight finish on theirs
    return peers
