"""Many clients' mixed traffic through the ambassador to two servers: every answer belongs to
its request, WebSockets included (an upgraded connection must never serve another request)."""

from __future__ import annotations

import asyncio

from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.mixed_traffic import KINDS, mixed_traffic


async def test_every_answer_belongs_to_its_request(
    start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    ambassador = await asyncio.to_thread(
        start_ambassador, upstreams=[f"{server1.url} weight=3", server2.url]
    )
    outcome = await mixed_traffic(f"http://127.0.0.1:{ambassador.port}", clients=12, requests=40)
    assert outcome.failures == [], outcome.failures[:5]
    assert set(outcome.counts) == set(KINDS)
    assert ambassador.proc.poll() is None
    assert "Traceback" not in ambassador.log()
