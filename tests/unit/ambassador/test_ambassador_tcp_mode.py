"""--mode tcp without sockets: the options it refuses, and BalancedTcp, the ambassador's
TcpUpstreams, on a real Balancer — the weighted sequence per connection, a failed dial as a
passive failure and the next peer, next_upstream off and its tries, hash on the client's
address, drain, least_conn on open connections, and the counts per peer."""

from __future__ import annotations

from typing import Any

import pytest

from ambassador.balancer import Balancer, Peer
from ambassador.config import AmbassadorConfig
from ambassador.groups import UpstreamGroup, parse_server
from ambassador.tcp import BalancedTcp
from podkit.options import load
from podkit.proxy import ProxySettings, Upstream
from podkit.proxy.tunnel import TunnelEnd


def config_of(*argv: str) -> AmbassadorConfig:
    return load(AmbassadorConfig, list(argv), {}, prog="ambassador")


class Transport:
    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return (self.address, 40000) if key == "peername" else default


def client(address: str = "10.0.0.7") -> TunnelEnd:
    end = TunnelEnd(client_side=True)
    end.transport = Transport(address)  # type: ignore[assignment]
    return end


def peer(name: str, **params: Any) -> Peer:
    return Peer(name=name, upstream=Upstream(f"http://{name}:6379", ProxySettings()), **params)


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def balanced(
    peers: list[Peer], method: str = "round_robin", **group: Any
) -> tuple[BalancedTcp, Balancer]:
    balancer = Balancer(peers, method, clock=Now())  # type: ignore[arg-type]
    spec = UpstreamGroup(servers=(parse_server("a:6379"),), method=method, **group)  # type: ignore[arg-type]
    return BalancedTcp(lambda: (spec, balancer)), balancer


def names(tcp: BalancedTcp, n: int, address: str = "10.0.0.7") -> list[str]:
    out = []
    for _ in range(n):
        up = tcp.pick(client(address), 0)
        assert up is not None
        out.append(up.host)
    return out


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--hash-key", "header:X-User", "--method", "hash"], "hash_key: only ip"),
        (["--health-path", "/healthz"], "no health path"),
        (["--next-upstream", "error http_503"], "only error and timeout"),
    ],
    ids=["hash-on-a-header", "health-path", "failover-on-a-status"],
)
def test_tcp_mode_refuses_what_only_http_has(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        config_of("--mode", "tcp", "--upstream", "a:6379", *argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ambassador: --mode") and problem in err and err.count("\n") == 1


def test_tcp_mode_refuses_routes(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "ambassador.yaml"
    path.write_text(
        "upstreams: [a:6379]\ngroups: {b: {upstreams: [b:6379]}}\nroutes: [{header: X, group: b}]\n"
    )
    with pytest.raises(SystemExit):
        config_of("--mode", "tcp", "--config", str(path))
    assert "groups and routes are HTTP's" in capsys.readouterr().err
    assert config_of("--mode", "tcp", "--upstream", "a:6379").mode == "tcp"


def test_connections_follow_nginx_weighted_sequence() -> None:
    tcp, _ = balanced([peer("a", weight=3), peer("b")])
    assert names(tcp, 8) == ["a", "a", "b", "a", "a", "a", "b", "a"]


def test_a_failed_dial_is_a_passive_failure_and_the_next_peer_is_tried() -> None:
    a, b = peer("a", max_fails=1, fail_timeout=10.0), peer("b")
    tcp, _ = balanced([a, b])
    conn = client()
    first = tcp.pick(conn, 0)
    assert first is a.upstream
    tcp.failed(conn, a.upstream, "connect")
    assert tcp.pick(conn, 1) is b.upstream  # the next peer, for the same connection
    assert tcp.pick(conn, 2) is None  # each peer once
    assert a.failures == {"connect": 1} and a.fails == 1
    # Out for fail_timeout: new connections go to b only.
    assert names(tcp, 4) == ["b"] * 4


def test_next_upstream_off_and_tries_bound_the_retries() -> None:
    tcp, _ = balanced([peer("a"), peer("b"), peer("c")], next_upstream=frozenset())
    conn = client()
    up = tcp.pick(conn, 0)
    assert up is not None
    tcp.failed(conn, up, "timeout")
    assert tcp.pick(conn, 1) is None
    tcp, _ = balanced([peer("a"), peer("b"), peer("c")], next_upstream_tries=2)
    conn = client()
    assert tcp.pick(conn, 0) is not None and tcp.pick(conn, 1) is not None
    assert tcp.pick(conn, 2) is None


def test_hash_keeps_a_client_address_on_one_peer() -> None:
    tcp, _ = balanced([peer("a"), peer("b"), peer("c")], method="hash")
    for address in ("10.0.0.1", "10.0.0.2", "192.168.1.9"):
        assert len(set(names(tcp, 5, address))) == 1
    spread = {names(tcp, 1, f"10.1.{i}.{i}")[0] for i in range(40)}
    assert spread == {"a", "b", "c"}


def test_a_draining_peer_gets_no_new_connections() -> None:
    a, b = peer("a"), peer("b", drain=True)
    tcp, _ = balanced([a, b])
    assert names(tcp, 4) == ["a"] * 4


def test_least_conn_counts_open_connections_and_the_bytes_are_kept_per_peer() -> None:
    a, b = peer("a"), peer("b")
    tcp, _ = balanced([a, b], method="least_conn")
    conns = []
    for _ in range(3):
        conn = client()
        up = tcp.pick(conn, 0)
        assert up is not None
        tcp.connected(conn, up)
        conns.append((conn, up))
    assert (a.upstream.active, b.upstream.active) in ((2, 1), (1, 2))
    busier = a if a.upstream.active == 2 else b
    for conn, up in conns:
        if up is busier.upstream:
            conn.received = 10
            conn.peer = TunnelEnd()
            conn.peer.received = 25
            tcp.closed(conn, up)
    assert busier.upstream.active == 0
    assert (busier.connections, busier.sent_bytes, busier.received_bytes) == (2, 20, 50)
    conn = client()
    assert tcp.pick(conn, 0) is busier.upstream  # now the one with fewer open
