"""CLIENT LIST lines → connected_clients_details, table-driven on lines from Redis 7."""

from __future__ import annotations

import pytest
from support import metrics

from adapter.clients import add_clients, parse_client
from podkit.exposition import Exposition

NOW = 1_800_000_000
REDIS_7 = (
    "id=5 addr=127.0.0.1:52814 laddr=127.0.0.1:6379 fd=8 name=worker age=100 idle=7 flags=N "
    "db=2 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 "
    "rbp=0 obl=0 oll=0 omem=0 tot-mem=1800 events=r cmd=blpop user=default redir=-1 resp=2"
)


@pytest.mark.parametrize(
    ("line", "want"),
    [
        pytest.param(
            REDIS_7,
            {
                "name": "worker",
                "created_at": str(NOW - 100),
                "idle_since": str(NOW - 7),
                "flags": "N",
                "db": "2",
                "omem": "0",
                "cmd": "blpop",
                "host": "127.0.0.1",
                "port": "52814",
            },
            id="redis-7",
        ),
        pytest.param(
            "id=9 addr=[::1]:40000 fd=9 name= age=0 idle=0 flags=N db=0 omem=0 cmd=client",
            {"host": "[::1]", "port": "40000", "name": ""},
            id="ipv6-and-empty-name",
        ),
        pytest.param("id=1 addr=1.2.3.4:5 name=a=b age=1 idle=1", None, id="value-with-equals"),
        pytest.param("addr=1.2.3.4:5 id=1", None, id="not-a-client-line"),
        pytest.param("", None, id="empty"),
        pytest.param("id=1 addr=h:1 age=x idle=1", None, id="age-not-a-number"),
    ],
)
def test_parse_client(line: str, want: dict[str, str] | None) -> None:
    got = parse_client(line, NOW)
    if want is None:
        assert got is None
    else:
        assert got is not None and want.items() <= got.items()


@pytest.mark.parametrize("with_port", [False, True])
def test_port_label_only_when_asked(with_port: bool) -> None:
    out = Exposition("redis")
    add_clients(
        out,
        (REDIS_7 + "\n" + REDIS_7.replace("id=5", "id=6") + "\n").encode(),
        with_port=with_port,
        now=NOW,
    )
    family = metrics.parse(out.render().decode())["redis_connected_clients_details"]
    names = {"name", "created_at", "idle_since", "flags", "db", "omem", "cmd", "host"}
    assert family.label_names() == (names | {"port"} if with_port else names)
    assert family.type == "gauge" and [v for _, _, v in family.samples] == [1.0, 1.0]
