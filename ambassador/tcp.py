"""tcp mode (`--mode tcp`): raw TCP connections balanced as nginx's stream module balances
them (`upstream` + `proxy_pass` in a `stream {}` block; HAProxy's `mode tcp`), on the engine's
TcpTunnel. Each client connection asks the group's balancer for a peer — round robin by
weight, least_conn, or hash on the client's address — and a refused or timed-out connect
counts as a passive failure (max_fails/fail_timeout) and goes to the next peer, as nginx's
`proxy_next_upstream on` does, within next_upstream_tries and next_upstream_timeout."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

from ambassador.balancer import Balancer, Tried
from ambassador.groups import UpstreamGroup
from podkit.proxy.tunnel import TcpUpstreams, TunnelEnd
from podkit.proxy.upstream import Upstream

# The group in use and its balancer, read at each connection: a reload swaps them.
Current = Callable[[], tuple[UpstreamGroup, Balancer]]


class Attempts:
    """One client connection's tries: the peers it tried (nginx's `tried`), since when."""

    __slots__ = ("balancer", "key", "started", "tried")

    def __init__(self, balancer: Balancer, key: bytes | None) -> None:
        self.balancer = balancer  # the one it started with, told of every outcome
        self.tried = Tried()
        self.key = key
        self.started = monotonic()


def client_address(client: TunnelEnd) -> bytes:
    """The hash key of `hash $remote_addr`: the client's IP address."""
    peer = client.transport.get_extra_info("peername") if client.transport else None
    if isinstance(peer, tuple) and peer:
        return str(peer[0]).encode()
    return b""


class BalancedTcp:
    """The engine's TcpUpstreams callables (`upstreams()`), on the group's balancer."""

    def __init__(self, current: Current) -> None:
        self.current = current

    def upstreams(self) -> TcpUpstreams:
        return TcpUpstreams(self.pick, self.connected, self.failed, self.closed)

    def pick(self, client: TunnelEnd, attempt: int) -> Upstream | None:
        attempts = client.state
        if not isinstance(attempts, Attempts):
            group, balancer = self.current()
            key = client_address(client) if balancer.method == "hash" else None
            attempts = client.state = Attempts(balancer, key)
        else:
            group = self.current()[0]
            if not group.next_upstream & {"error", "timeout"}:
                return None  # next_upstream off: one try
            limit = group.next_upstream_tries
            if limit and attempt >= limit:
                return None
            deadline = group.next_upstream_timeout
            if deadline and monotonic() - attempts.started > deadline:
                return None
        peer = attempts.balancer.pick(attempts.tried, key=attempts.key)
        return peer.upstream if peer is not None else None

    def connected(self, client: TunnelEnd, upstream: Upstream) -> None:
        upstream.active += 1  # least_conn and max_conns count open connections
        attempts = client.state
        if isinstance(attempts, Attempts):
            attempts.balancer.connected(upstream)

    def failed(self, client: TunnelEnd, upstream: Upstream, kind: str) -> None:
        if upstream.on_failure is not None:  # the balancer's passive health
            upstream.on_failure(upstream, kind)

    def closed(self, client: TunnelEnd, upstream: Upstream) -> None:
        upstream.active -= 1
        attempts = client.state
        if not isinstance(attempts, Attempts):
            return
        for peer in attempts.balancer.peers:
            if peer.upstream is upstream:
                peer.sent_bytes += client.received
                peer.received_bytes += client.peer.received if client.peer is not None else 0
                break
