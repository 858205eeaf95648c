"""Choosing a peer: nginx's round robin (ngx_http_upstream_round_robin.c), least_conn and
consistent hashing, with nginx's passive health (max_fails within fail_timeout).

The round robin reproduces nginx's pick sequence exactly: every peer's current_weight grows
by its effective_weight, the largest wins and pays the total back; a failure lowers the
effective weight by weight/max_fails, and each pick earns one point of it back.

Beyond nginx open source: slow start (a peer that comes back or is added ramps its weight
up over `slow_start` seconds, as nginx Plus and HAProxy's `slowstart`), drain (no new
requests; those in flight finish), and outlier ejection (ambassador.outlier).
"""

from __future__ import annotations

import bisect
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ambassador.outlier import NO_RESPONSE, Ejector
from podkit.proxy.head import RequestHead
from podkit.proxy.stats import Histogram
from podkit.proxy.upstream import Upstream, parse_upstream_url

Method = Literal["round_robin", "least_conn", "hash"]
Clock = Callable[[], float]


@dataclass(eq=False)
class Peer:
    """One upstream address with nginx's per-peer state."""

    name: str  # as configured: server1:80 (several peers share it when DNS gives several IPs)
    upstream: Upstream
    weight: int = 1
    max_fails: int = 1
    fail_timeout: float = 10.0
    backup: bool = False
    down: bool = False
    max_conns: int = 0
    slow_start: float = 0.0  # seconds over which the weight ramps up when it comes back
    drain: bool = False  # no new requests (set by the config or the admin port)
    configured: tuple[object, ...] = ()  # the server parameters it was built from
    # nginx's state (current_weight a float only so that a slow start can ramp smoothly)
    current_weight: float = 0.0
    effective_weight: int = 0
    fails: int = 0
    accessed: float = 0.0
    checked: float = 0.0
    healthy: bool = True  # the active health check's verdict; True without checks
    ramp_from: float = 0.0  # slow start: when the ramp began (0: at full weight)
    # outlier ejection (ambassador.outlier)
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    ejected_until: float = 0.0
    ejections: int = 0  # the ejection time's multiplier
    ejections_total: int = 0
    # what the metrics show
    responses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    # tcp mode: connections made, bytes each way (client → peer, peer → client)
    connections: int = 0
    sent_bytes: int = 0
    received_bytes: int = 0

    def __post_init__(self) -> None:
        self.effective_weight = self.weight

    @property
    def conns(self) -> int:
        return self.upstream.active

    def share(self, now: float) -> float:
        """The part of its weight it has now: below 1 while slow starting."""
        if self.ramp_from:
            elapsed = now - self.ramp_from
            if elapsed < self.slow_start:
                return max(elapsed / self.slow_start, MIN_SHARE)
            self.ramp_from = 0.0
        return 1.0

    def start_slow(self, now: float) -> None:
        """It comes back (or is added): ramp its weight up, when it has a slow_start."""
        if self.slow_start:
            self.ramp_from = now

    def available(self, now: float) -> bool:
        """Up by configuration, drain, health check, max_fails, ejection and max_conns."""
        if self.down or self.drain or not self.healthy or self.ejected_until > now:
            return False
        if (
            self.max_fails
            and self.fails >= self.max_fails
            and now - self.checked <= self.fail_timeout
        ):
            return False
        return not (self.max_conns and self.conns >= self.max_conns)


MIN_SHARE = 0.01  # a slow-started peer's share of its weight at the start of the ramp


class Tried:
    """The peers one request has tried (nginx's rrp->tried bitmap), and the group (route)
    it was sent to."""

    __slots__ = ("backup", "group", "peers")

    def __init__(self, group: object = None) -> None:
        self.peers: set[int] = set()
        self.backup = False
        self.group = group


class Balancer:
    def __init__(
        self,
        peers: list[Peer],
        method: Method = "round_robin",
        hash_key: Callable[[RequestHead], bytes] | None = None,
        clock: Clock = time.monotonic,
        ejector: Ejector | None = None,
    ) -> None:
        self.primary = [p for p in peers if not p.backup]
        self.backup = [p for p in peers if p.backup]
        self.method = method
        self.hash_key = hash_key
        self.clock = clock
        self.ejector = ejector
        self.ring = HashRing(self.primary) if method == "hash" else None
        # nginx's peers->single: one primary and no backup is never taken out by failures.
        self.single = self.primary[0] if len(self.primary) == 1 and not self.backup else None
        for peer in peers:
            peer.upstream.on_failure = self._failed
            peer.upstream.on_success = self._succeeded
        self._by_upstream = {id(p.upstream): p for p in peers}

    @property
    def peers(self) -> list[Peer]:
        return self.primary + self.backup

    # -- picking ----------------------------------------------------------------------------
    def pick(
        self, tried: Tried, head: RequestHead | None = None, key: bytes | None = None
    ) -> Peer | None:
        """The next peer for a request (`head`) or a tcp connection (`key`: the hash key,
        its client's address)."""
        now = self.clock()
        if key is None and head is not None and self.hash_key is not None:
            key = self.hash_key(head)
        group = self.backup if tried.backup else self.primary
        peer = self._pick_in(group, tried, now, key)
        if peer is None and not tried.backup and self.backup:
            # nginx moves to the backup servers when no primary one is left for this request
            tried.backup = True
            tried.peers.clear()
            peer = self._pick_in(self.backup, tried, now, key)
        if peer is not None:
            tried.peers.add(id(peer))
        return peer

    def _pick_in(
        self, group: list[Peer], tried: Tried, now: float, key: bytes | None
    ) -> Peer | None:
        if not group:
            return None
        if self.single is not None:  # nginx: a single server is never taken out by max_fails
            peer = self.single
            if peer.down or peer.drain or not peer.healthy or id(peer) in tried.peers:
                return None
            if peer.max_conns and peer.conns >= peer.max_conns:
                return None
            return peer
        if self.method == "hash" and self.ring is not None and key is not None and not tried.backup:
            hashed = self.ring.find(key, tried, now)
            if hashed is not None:
                return hashed  # nginx falls back to round robin after 20 failed hash lookups
        if self.method == "least_conn":
            return self._least_conn(group, tried, now)
        return self._round_robin(group, tried, now)

    def _round_robin(self, group: list[Peer], tried: Tried, now: float) -> Peer | None:
        best: Peer | None = None
        total = 0.0
        for peer in group:
            if id(peer) in tried.peers or not peer.available(now):
                continue
            weight = float(peer.effective_weight)
            if peer.ramp_from:
                weight *= peer.share(now)
            peer.current_weight += weight
            total += weight
            if peer.effective_weight < peer.weight:
                peer.effective_weight += 1
            if best is None or peer.current_weight > best.current_weight:
                best = peer
        if best is None:
            return None
        best.current_weight -= total
        if now - best.checked > best.fail_timeout:
            best.checked = now
        return best

    def _least_conn(self, group: list[Peer], tried: Tried, now: float) -> Peer | None:
        # Fewest conns/weight wins; ties are broken by round robin among the tied (nginx).
        candidates = [p for p in group if id(p) not in tried.peers and p.available(now)]
        if not candidates:
            return None
        weights = {id(p): p.weight * p.share(now) for p in candidates}
        best = candidates[0]
        for peer in candidates[1:]:
            if peer.conns * weights[id(best)] < best.conns * weights[id(peer)]:
                best = peer
        w = weights[id(best)]
        tied = [p for p in candidates if p.conns * w == best.conns * weights[id(p)]]
        if len(tied) == 1:
            if now - best.checked > best.fail_timeout:
                best.checked = now
            return best
        return self._round_robin(tied, Tried(), now)

    # -- feedback (ngx_http_upstream_free_round_robin_peer) ------------------------------------
    def _failed(self, upstream: Upstream, kind: str) -> None:
        peer = self._by_upstream.get(id(upstream))
        if peer is None:
            return
        peer.failures[kind] = peer.failures.get(kind, 0) + 1
        if peer is self.single:
            return  # nginx keeps no failure state for a single server
        now = self.clock()
        if self.ejector is not None:
            status = int(kind[5:]) if kind.startswith("http_") else NO_RESPONSE
            self.ejector.result(peer, status, now, self.peers)
        peer.fails += 1
        peer.accessed = now
        peer.checked = now
        if peer.max_fails:
            peer.effective_weight -= peer.weight // peer.max_fails
        peer.effective_weight = max(peer.effective_weight, 0)

    def _succeeded(self, upstream: Upstream, status: int, seconds: float) -> None:
        peer = self._by_upstream.get(id(upstream))
        if peer is None:
            return
        peer.responses[status] = peer.responses.get(status, 0) + 1
        peer.latency.observe(seconds)
        if self.ejector is not None and peer is not self.single:
            self.ejector.result(peer, status, self.clock(), self.peers)
        self._recovered(peer)

    def connected(self, upstream: Upstream) -> None:
        """tcp mode: a connection to `upstream` was made (nginx's stream module counts a
        session without a connect failure as a success)."""
        peer = self._by_upstream.get(id(upstream))
        if peer is None:
            return
        peer.connections += 1
        if self.ejector is not None and peer is not self.single:
            self.ejector.result(peer, 0, self.clock(), self.peers)
        self._recovered(peer)

    def _recovered(self, peer: Peer) -> None:
        if peer.accessed < peer.checked:
            if peer.max_fails and peer.fails >= peer.max_fails:
                peer.start_slow(self.clock())  # back after fail_timeout
            peer.fails = 0

    def any_available(self) -> bool:
        now = self.clock()
        if self.single is not None:
            peer = self.single
            return (
                not peer.down
                and not peer.drain
                and peer.healthy
                and not (peer.max_conns and peer.conns >= peer.max_conns)
            )
        return any(p.available(now) for p in self.peers)


def chash_server(peer: Peer) -> bytes:
    """What nginx hashes for a server's points: host, NUL, port (unix: the path, NUL), of
    the server as configured (its addresses from DNS share its points)."""
    try:
        host, port, path = parse_upstream_url(peer.name)
    except ValueError:
        host, port, path = peer.upstream.host, peer.upstream.port, peer.upstream.path
    return f"{path}\0".encode() if path else f"{host}\0{port}".encode()


class HashRing:
    """Consistent hashing in the manner of nginx's `hash $key consistent`: 160 points per unit
    of weight on a CRC32 ring; a key goes to the first available peer clockwise."""

    POINTS_PER_WEIGHT = 160
    TRIES = 20

    def __init__(self, peers: list[Peer]) -> None:
        points: list[tuple[int, int]] = []
        for index, peer in enumerate(peers):
            base = zlib.crc32(chash_server(peer))
            prev = 0
            for _ in range(self.POINTS_PER_WEIGHT * peer.weight):
                prev = zlib.crc32(prev.to_bytes(4, "little"), base)
                points.append((prev, index))
        points.sort()
        self.hashes = [h for h, _ in points]
        self.owners = [i for _, i in points]
        self.peers = peers

    def find(self, key: bytes, tried: Tried, now: float) -> Peer | None:
        if not self.hashes:
            return None
        start = bisect.bisect_left(self.hashes, zlib.crc32(key))
        for step in range(min(self.TRIES, len(self.hashes))):
            peer = self.peers[self.owners[(start + step) % len(self.hashes)]]
            if id(peer) not in tried.peers and peer.available(now):
                return peer
        return None
