"""cluster.py against recorded CLUSTER replies: the node list of /discover-cluster-nodes,
the slot map, slot ownership and the URLs of the other masters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter import cluster
from podkit.exposition import Exposition

DATA = Path(__file__).parent / "data"


def test_nodes_are_listed_in_cluster_nodes_order() -> None:
    text = (DATA / "cluster_nodes_7.0.txt").read_text()
    nodes = cluster.parse_nodes(text)
    assert len(nodes) == 6
    assert nodes == [line.split()[1].split("@")[0] for line in text.splitlines() if line]


@pytest.mark.parametrize(
    ("line", "node"),
    [
        pytest.param("id 10.0.0.1:7000@17000 master - 0 0 1 connected 0-5460", "10.0.0.1:7000"),
        pytest.param("id 10.0.0.2:7001@17001,redis-1 slave x 0 0 1 connected", "10.0.0.2:7001"),
        pytest.param("id :0@0 master,noaddr - 0 0 1 disconnected", None, id="noaddr"),
        pytest.param("garbage", None, id="one-field"),
    ],
)
def test_node_addresses(line: str, node: str | None) -> None:
    assert cluster.parse_nodes(line) == ([node] if node else [])


def test_discovery_document_is_go_marshal_indent() -> None:
    body = cluster.discovery_document(["127.0.0.1:7000", "127.0.0.1:7001"], "redis://x:1")
    assert body.decode() == (
        '[\n  {\n    "targets": [\n      "redis://127.0.0.1:7000",\n'
        '      "redis://127.0.0.1:7001"\n    ],\n    "labels": {}\n  }\n]'
    )
    tls = json.loads(cluster.discovery_document(["h:1"], "rediss://x:1"))
    assert tls == [{"targets": ["rediss://h:1"], "labels": {}}]


SLOTS_REPLY = [
    [0, 5460, [b"127.0.0.1", 7000, b"id0"], [b"127.0.0.1", 7003, b"id3"]],
    [5461, 10922, [b"127.0.0.1", 7001, b"id1"]],
    [10923, 16383, [b"::1", 7002, b"id2"]],
]


def test_slot_map_and_owner() -> None:
    slots = cluster.parse_slots(SLOTS_REPLY)
    assert slots == [
        (0, 5460, "127.0.0.1:7000"),
        (5461, 10922, "127.0.0.1:7001"),
        (10923, 16383, "[::1]:7002"),
    ]
    # CRC16 slots: "foo" is 12182, "bar" 5061; a hash tag picks the slot of its tag
    assert cluster.owner(slots, b"foo") == "[::1]:7002"
    assert cluster.owner(slots, b"bar") == "127.0.0.1:7000"
    assert cluster.owner(slots, b"{bar}.other") == "127.0.0.1:7000"
    assert cluster.parse_slots(Exception("refused")) == []


@pytest.mark.parametrize(
    ("seed", "password", "url"),
    [
        ("redis://10.0.0.1:7000", "", "redis://h:1"),
        ("rediss://u:p@10.0.0.1:7000", "p", "rediss://u:p@h:1"),
        ("redis://u@10.0.0.1:7000", "", "redis://u@h:1"),
        ("unix:///tmp/r.sock", "s/ecret", "redis://:s%2Fecret@h:1"),
    ],
)
def test_node_urls_keep_scheme_and_credentials(seed: str, password: str, url: str) -> None:
    assert cluster.node_url(seed, "h:1", password) == url


def test_cluster_info_is_mapped_like_info() -> None:
    out = Exposition("redis")
    cluster.add_cluster_info(
        out, b"cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\n"
    )
    text = out.render().decode()
    assert "redis_cluster_state 1\n" in text
    assert "redis_cluster_slots_assigned 16384\n" in text
    assert "redis_cluster_known_nodes 6\n" in text
    empty = Exposition("redis")
    cluster.add_cluster_info(empty, Exception("ERR cluster support disabled"))
    assert empty.render() == b"\n"
