"""The balancer and the nginx reference side by side, driven by the same events and clock."""

from __future__ import annotations

from typing import Any

from balancer_reference import NgxPeer, NgxRequest, NgxUpstream

from ambassador.balancer import Balancer, Method, Peer, Tried
from podkit.proxy.settings import ProxySettings
from podkit.proxy.upstream import Upstream

SETTINGS = ProxySettings()


class FakeClock:
    """nginx's ngx_time(): whole seconds, moved by the test."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


def make_peer(name: str, port: int, **params: Any) -> Peer:
    return Peer(
        name, Upstream(f"http://127.0.0.{port % 250 + 1}:{8000 + port}", SETTINGS), **params
    )


def make_balancer(
    weights: list[int] | None = None,
    *,
    servers: list[dict[str, Any]] | None = None,
    method: Method = "round_robin",
    clock: FakeClock | None = None,
) -> tuple[Balancer, dict[str, Peer]]:
    """Peers named a, b, c… with the weights (or full `server` parameters) given."""
    specs = servers if servers is not None else [{"weight": w} for w in weights or []]
    peers = [make_peer(chr(ord("a") + i), i, **spec) for i, spec in enumerate(specs)]
    balancer = Balancer(peers, method, clock=clock or FakeClock())
    return balancer, {p.name: p for p in peers}


def fail(peer: Peer, kind: str = "connect") -> None:
    """What the engine does when an attempt on this peer fails."""
    assert peer.upstream.on_failure is not None, "the balancer hooks on_failure"
    peer.upstream.on_failure(peer.upstream, kind)


def succeed(peer: Peer, status: int = 200) -> None:
    assert peer.upstream.on_success is not None, "the balancer hooks on_success"
    peer.upstream.on_success(peer.upstream, status, 0.001)


def pick_names(balancer: Balancer, n: int) -> list[str]:
    """n requests in a row, each answered: the peer names chosen."""
    out = []
    for _ in range(n):
        peer = balancer.pick(Tried())
        assert peer is not None
        out.append(peer.name)
        succeed(peer)
    return out


class Twins:
    """One upstream block as ambassador.balancer and as the nginx reference."""

    def __init__(
        self, servers: list[dict[str, Any]], method: Method = "round_robin", now: int = 1_000_000
    ) -> None:
        self.clock = FakeClock(now)
        self.balancer, self.peers = make_balancer(servers=servers, method=method, clock=self.clock)
        ngx = {
            name: NgxPeer(
                name,
                weight=p.weight,
                max_fails=p.max_fails,
                fail_timeout=int(p.fail_timeout),
                down=p.down,
                max_conns=p.max_conns,
            )
            for name, p in self.peers.items()
        }
        self.ngx_peers = ngx
        self.nginx = NgxUpstream(
            [ngx[p.name] for p in self.balancer.primary],
            [ngx[p.name] for p in self.balancer.backup],
            self.clock,
        )
        self.method = method

    def start(self) -> tuple[Tried, NgxRequest]:
        return Tried(), self.nginx.request()

    def pick(self, tried: Tried, rrp: NgxRequest) -> tuple[str | None, str | None]:
        ours = self.balancer.pick(tried)
        if self.method == "least_conn":
            theirs = self.nginx.get_least_conn_peer(rrp)
        else:
            theirs = self.nginx.get_round_robin_peer(rrp)
        return (ours.name if ours else None, theirs.name if theirs else None)

    def finish(self, name: str, rrp: NgxRequest, failed: bool) -> None:
        if failed:
            fail(self.peers[name])
        else:
            succeed(self.peers[name])
        self.nginx.free(rrp, failed)

    def state(self) -> dict[str, tuple[int, int, int, float, float]]:
        """What both sides should agree on after every event, per peer."""
        return {
            name: (p.current_weight, p.effective_weight, p.fails, p.checked, p.accessed)
            for name, p in self.peers.items()
        }

    def ngx_state(self) -> dict[str, tuple[int, int, int, float, float]]:
        return {
            name: (p.current_weight, p.effective_weight, p.fails, p.checked, p.accessed)
            for name, p in self.ngx_peers.items()
        }
