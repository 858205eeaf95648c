"""nginx's peer selection, transcribed from its C for the balancer tests to compare against.

Written from nginx 1.22's src/http/ngx_http_upstream_round_robin.c
(ngx_http_upstream_init_round_robin, ngx_http_upstream_get_round_robin_peer,
ngx_http_upstream_get_peer, ngx_http_upstream_free_round_robin_peer) and
src/http/modules/ngx_http_upstream_least_conn_module.c (and, for consistent hashing,
ngx_http_upstream_hash_module.c), statement by statement, sharing no code with
ambassador.balancer: where the two disagree, one of them is not nginx.

Time is an integer, as nginx's ngx_time() is.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class NgxPeer:
    """ngx_http_upstream_rr_peer_t: the configuration and the state nginx keeps per peer."""

    name: str
    weight: int = 1
    max_fails: int = 1
    fail_timeout: int = 10
    down: bool = False
    max_conns: int = 0
    # ngx_pcalloc'ed, then effective_weight = weight, current_weight = 0
    current_weight: int = 0
    effective_weight: int = field(init=False)
    conns: int = 0
    fails: int = 0
    accessed: int = 0
    checked: int = 0

    def __post_init__(self) -> None:
        self.effective_weight = self.weight

    def failed(self, now: int) -> bool:
        return bool(
            self.max_fails
            and self.fails >= self.max_fails
            and now - self.checked <= self.fail_timeout
        )


@dataclass
class NgxPeers:
    """ngx_http_upstream_rr_peers_t: one list, the primary or the backup one."""

    peer: list[NgxPeer]
    single: bool
    next: NgxPeers | None = None


@dataclass
class NgxRequest:
    """ngx_http_upstream_rr_peer_data_t: one request's view (rrp->peers, tried, current)."""

    peers: NgxPeers
    tried: set[int] = field(default_factory=set)  # indexes into peers.peer
    current: NgxPeer | None = None


class NgxUpstream:
    """An `upstream { server ...; }` block; `clock` gives ngx_time()."""

    def __init__(self, servers: list[NgxPeer], backup: list[NgxPeer], clock: Callable[[], int]):
        # ngx_http_upstream_init_round_robin: single = (n == 1), reset once backups exist
        self.primary = NgxPeers(servers, single=len(servers) == 1)
        if backup:
            self.primary.single = False
            self.primary.next = NgxPeers(backup, single=False)
        self.clock = clock

    def request(self) -> NgxRequest:
        return NgxRequest(self.primary)

    # -- ngx_http_upstream_get_round_robin_peer --------------------------------------------------
    def get_round_robin_peer(self, rrp: NgxRequest) -> NgxPeer | None:
        peers = rrp.peers
        if peers.single:
            peer: NgxPeer | None = peers.peer[0]
            assert peer is not None
            if peer.down or (peer.max_conns and peer.conns >= peer.max_conns):
                peer = None
        else:
            peer = self._get_peer(rrp)
        if peer is None:
            if peers.next is not None:  # failed: on to the backup servers, tried cleared
                rrp.peers = peers.next
                rrp.tried.clear()
                return self.get_round_robin_peer(rrp)
            return None  # NGX_BUSY
        rrp.current = peer
        peer.conns += 1
        return peer

    def _get_peer(self, rrp: NgxRequest) -> NgxPeer | None:
        now = self.clock()
        best: NgxPeer | None = None
        best_i = 0
        total = 0
        for i, peer in enumerate(rrp.peers.peer):
            if i in rrp.tried or peer.down or peer.failed(now):
                continue
            if peer.max_conns and peer.conns >= peer.max_conns:
                continue
            peer.current_weight += peer.effective_weight
            total += peer.effective_weight
            if peer.effective_weight < peer.weight:
                peer.effective_weight += 1
            if best is None or peer.current_weight > best.current_weight:
                best, best_i = peer, i
        if best is None:
            return None
        rrp.tried.add(best_i)
        best.current_weight -= total
        if now - best.checked > best.fail_timeout:
            best.checked = now
        return best

    # -- ngx_http_upstream_get_least_conn_peer ---------------------------------------------------
    def get_least_conn_peer(self, rrp: NgxRequest) -> NgxPeer | None:
        peers = rrp.peers
        if peers.single:
            return self.get_round_robin_peer(rrp)
        now = self.clock()
        best: NgxPeer | None = None
        many = False
        p = 0
        for i, peer in enumerate(peers.peer):
            if i in rrp.tried or peer.down or peer.failed(now):
                continue
            if peer.max_conns and peer.conns >= peer.max_conns:
                continue
            if best is None or peer.conns * best.weight < best.conns * peer.weight:
                best, many, p = peer, False, i
            elif peer.conns * best.weight == best.conns * peer.weight:
                many = True
        if best is None:
            if peers.next is not None:
                rrp.peers = peers.next
                rrp.tried.clear()
                return self.get_least_conn_peer(rrp)
            return None
        total = 0
        if many:
            for i in range(p, len(peers.peer)):
                peer = peers.peer[i]
                if i in rrp.tried or peer.down:
                    continue
                if peer.conns * best.weight != best.conns * peer.weight:
                    continue
                if peer.failed(now) or (peer.max_conns and peer.conns >= peer.max_conns):
                    continue
                peer.current_weight += peer.effective_weight
                total += peer.effective_weight
                if peer.effective_weight < peer.weight:
                    peer.effective_weight += 1
                if peer.current_weight > best.current_weight:
                    best, p = peer, i
        best.current_weight -= total
        if now - best.checked > best.fail_timeout:
            best.checked = now
        best.conns += 1
        rrp.current = best
        rrp.tried.add(p)
        return best

    # -- ngx_http_upstream_free_round_robin_peer -------------------------------------------------
    def free(self, rrp: NgxRequest, failed: bool) -> None:
        peer = rrp.current
        assert peer is not None
        if rrp.peers.single:
            peer.conns -= 1
            return  # neither fails nor weights are touched: one server is never taken out
        if failed:
            now = self.clock()
            peer.fails += 1
            peer.accessed = now
            peer.checked = now
            if peer.max_fails:
                peer.effective_weight -= peer.weight // peer.max_fails
            if peer.effective_weight < 0:
                peer.effective_weight = 0
        elif peer.accessed < peer.checked:  # mark peer live if check passed
            peer.fails = 0
        peer.conns -= 1


def smooth_wrr(weights: list[int], picks: int) -> list[int]:
    """Indexes nginx picks, from a fresh state, for peers of these weights that never fail."""
    upstream = NgxUpstream([NgxPeer(str(i), weight=w) for i, w in enumerate(weights)], [], int)
    index = {id(p): i for i, p in enumerate(upstream.primary.peer)}
    out = []
    for _ in range(picks):
        rrp = upstream.request()
        peer = upstream.get_round_robin_peer(rrp)
        assert peer is not None
        out.append(index[id(peer)])
        upstream.free(rrp, failed=False)
    return out


def chash_owners(servers: list[str], weights: list[int], keys: list[bytes]) -> list[int]:
    """Which server `hash $key consistent` sends each key to, every server up: the points of
    ngx_http_upstream_init_chash (crc32 of HOST \\0 PORT PREV_HASH, 160 per unit of weight,
    as Cache::Memcached::Fast) and the lookup of ngx_http_upstream_find_chash_point."""
    points: dict[int, int] = {}  # hash → server; nginx keeps one point per hash value
    for index, (server, weight) in enumerate(zip(servers, weights, strict=True)):
        if server.startswith("unix:"):
            host, port = server[5:], ""
        else:
            host, _, port = server.rpartition(":")
        base = zlib.crc32(host.encode() + b"\0" + port.encode())
        prev = 0
        for _ in range(160 * weight):
            prev = zlib.crc32(prev.to_bytes(4, "little"), base)
            points.setdefault(prev, index)
    hashes = sorted(points)
    return [
        points[hashes[bisect.bisect_left(hashes, zlib.crc32(key)) % len(hashes)]] for key in keys
    ]
