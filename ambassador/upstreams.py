"""The peers as the admin port's /upstreams shows and changes them: one peer's view as JSON,
the workers' views added up into one, a run-time change (drain, down) applied to the peers
it names, and the peers as a log line. ambassador.admin serves them over HTTP and fences the
writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from time import monotonic
from typing import Any

from ambassador.balancer import Balancer, Peer

Views = list[dict[str, Any]]


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


def views_of(balancers: Mapping[str, Balancer]) -> list[dict[str, object]]:
    """Every peer of every group (by name), each at its balancer's clock."""
    return [
        peer_view(name, p, balancer.clock())
        for name, balancer in balancers.items()
        for p in balancer.peers
    ]


def change_peers(balancers: Mapping[str, Balancer], change: dict[str, Any]) -> Views:
    """An admin write: set drain/down on the peers it names (all groups, or `group`); the
    views of the peers changed."""
    changed: Views = []
    now = monotonic()
    for name, balancer in balancers.items():
        if change.get("group", name) != name:
            continue
        for peer in balancer.peers:
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


def describe(balancer: Balancer) -> str:
    """The peers as a log line: address, weight, backup."""
    return (
        ", ".join(
            f"{p.upstream.url} weight={p.weight}{' backup' if p.backup else ''}"
            for p in balancer.peers
        )
        or "no peers"
    )
