"""Upstream names re-resolved while the ambassador runs: one peer per address, following
the name as its addresses change (a headless Service's pods coming and going).

The system resolver cannot be pointed at a test's answers without editing /etc/hosts or
/etc/resolv.conf, which tests must not touch. So the ambassador runs in-process (`run`,
as `python -m ambassador` does) with only `loop.getaddrinfo` replaced by a resolver the test
controls; everything else is real: two echo servers on 127.0.0.1 and 127.0.0.2 (the same
port, two "pod IPs"), real connections, the admin port's /upstreams. One more test runs the
real process against `localhost`, resolved by the system resolver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    SERVED_BY,
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.processes import free_port

from ambassador.config import AmbassadorConfig
from ambassador.service import run
from podkit.options import load

NAME = "backend.ambassador.test"  # .test: reserved, never a real name
CHANGE_WITHIN = 10.0  # resolved every 0.1 s; ample room on a slow machine


class Resolver:
    """Answers for NAME (None: the lookup fails, as when DNS is unreachable); other names
    go to the real resolver."""

    def __init__(self, real: Callable[..., Awaitable[Any]], answers: list[str]) -> None:
        self.real = real
        self.answers: list[str] | None = answers
        self.queries = 0

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return await self.real(host, port, *args, **kwargs)
        self.queries += 1
        if self.answers is None:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in self.answers
        ]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + CHANGE_WITHIN
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_peers_follow_the_names_addresses(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    start_server("one", port=port, host="127.0.0.1")
    start_server("two", port=port, host="127.0.0.2")
    listen, admin = free_port(), free_port()
    config = load(
        AmbassadorConfig,
        [
            "--listen",
            f"127.0.0.1:{listen}",
            "--admin-listen",
            f"127.0.0.1:{admin}",
            "--upstream",
            f"http://{NAME}:{port} weight=3",
            "--resolve-interval",
            "0.1s",
        ],
        prog="ambassador",
    )
    loop = asyncio.get_running_loop()
    resolver = Resolver(loop.getaddrinfo, ["127.0.0.1"])
    monkeypatch.setattr(loop, "getaddrinfo", resolver.getaddrinfo)
    caplog.set_level(logging.INFO, logger="ambassador")

    stop = asyncio.Event()
    service = asyncio.create_task(run(config, stop))
    async with aiohttp.ClientSession() as session:

        async def upstreams() -> list[dict[str, Any]]:
            async with session.get(f"http://127.0.0.1:{admin}/upstreams") as response:
                peers: list[dict[str, Any]] = json.loads(await response.text())
                return peers

        async def addresses() -> list[str]:
            return sorted(p["address"] for p in await upstreams())

        async def split(n: int) -> Counter[str]:
            served: Counter[str] = Counter()
            for _ in range(n):
                async with session.get(f"http://127.0.0.1:{listen}/") as response:
                    assert response.status == 200
                    served[response.headers[SERVED_BY]] += 1
            return served

        async def answers() -> bool:
            try:
                return bool(await upstreams())
            except aiohttp.ClientError:
                return False

        try:
            await eventually(answers, "the admin port")
            # One address: one peer, with the server's weight and the name it came from.
            (peer,) = await upstreams()
            assert peer["server"] == f"http://{NAME}:{port}"
            assert peer["address"] == f"http://127.0.0.1:{port}"
            assert peer["weight"] == 3
            assert await split(8) == {"one": 8}

            # A second address: a second peer of the same server, with the same weight;
            # the first keeps what it learnt (its responses).
            resolver.answers = ["127.0.0.1", "127.0.0.2"]
            both = [f"http://127.0.0.1:{port}", f"http://127.0.0.2:{port}"]

            async def two_peers() -> bool:
                return await addresses() == both

            await eventually(two_peers, "two peers")
            peers = {p["address"]: p for p in await upstreams()}
            assert [p["weight"] for p in peers.values()] == [3, 3]
            assert {p["server"] for p in peers.values()} == {f"http://{NAME}:{port}"}
            assert peers[both[0]]["responses"] == {"200": 8}
            assert peers[both[1]]["responses"] == {}
            assert await split(40) == {"one": 20, "two": 20}
            assert "upstream addresses changed" in caplog.text

            # The resolver fails: the last good set stays, and serves.
            resolver.answers = None
            asked = resolver.queries

            async def asked_thrice() -> bool:
                return resolver.queries >= asked + 3

            await eventually(asked_thrice, "three failed lookups")
            assert await addresses() == both
            assert await split(20) == {"one": 10, "two": 10}
            assert f"cannot resolve {NAME}" in caplog.text

            # The first address goes away: its peer goes, the other stays as it was.
            resolver.answers = ["127.0.0.2"]

            async def only_the_second() -> bool:
                return await addresses() == both[1:]

            await eventually(only_the_second, "one peer left")
            (peer,) = await upstreams()
            assert peer["responses"] == {"200": 30}
            assert await split(10) == {"two": 10}
        finally:
            stop.set()
            await asyncio.wait_for(service, 30)


def test_system_resolver_gives_the_peers_of_localhost(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    """The real process, the system resolver: `localhost` becomes one peer per address
    getaddrinfo gives for it (127.0.0.1, and [::1] where /etc/hosts has it)."""
    server = start_server("local")
    ambassador = start_ambassador(upstreams=[f"http://localhost:{server.port} weight=2"])
    infos = socket.getaddrinfo("localhost", server.port, type=socket.SOCK_STREAM)
    want = {
        f"http://[{info[4][0]}]:{server.port}"
        if ":" in str(info[4][0])
        else f"http://{info[4][0]}:{server.port}"
        for info in infos
    }
    peers = ambassador.upstreams()
    assert {p["address"] for p in peers} == want
    assert {(p["server"], p["weight"]) for p in peers} == {(f"http://localhost:{server.port}", 2)}
    if f"http://127.0.0.1:{server.port}" in want:
        reply = ambassador.request("GET", "/")
        assert (reply.status, reply.server) == (200, "local")
