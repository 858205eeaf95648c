"""Mixed traffic through a proxy, the way many clients at once would send it, each answer
checked to belong to its own request: GETs and POSTs (whole, chunked, with Expect) that name
themselves in the path, HEAD, large and dripped bodies, no-body statuses, and WebSockets
opened and closed between them on pooled connections.

An answer that went to the wrong client, a body cut short, or a connection a tunnel left
behind shows up as a failure naming the request."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp

KINDS = ("get", "post", "chunked", "expect", "head", "bytes", "drip", "status", "ws")


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def one(
    session: aiohttp.ClientSession, base: str, rid: str, kind: str, rng: random.Random
) -> None:
    if kind == "get":
        async with session.get(f"{base}/id/{rid}?format=json") as response:
            seen = await response.json()
            assert seen["path"] == f"/id/{rid}", seen["path"]
    elif kind in ("post", "chunked", "expect"):
        body = os.urandom(rng.choice([0, 1, 100, 70_000, 300_000]))

        async def halves() -> AsyncIterator[bytes]:
            yield body[: len(body) // 2]
            await asyncio.sleep(0)
            yield body[len(body) // 2 :]

        data = halves() if kind == "chunked" else body
        url = f"{base}/id/{rid}?format=json"
        async with session.post(url, data=data, expect100=kind == "expect") as response:
            seen = await response.json()
            assert seen["path"] == f"/id/{rid}", seen["path"]
            assert seen["body_sha256"] == hashlib.sha256(body).hexdigest(), "body changed"
    elif kind == "head":
        async with session.head(f"{base}/bytes/{rng.randint(0, 5000)}") as response:
            assert response.status == 200 and await response.read() == b""
    elif kind == "bytes":
        n = rng.choice([0, 10, 65_536, 1_000_000])
        async with session.get(f"{base}/bytes/{n}?chunked={rng.randint(0, 1)}") as response:
            assert len(await response.read()) == n
    elif kind == "drip":
        async with session.get(f"{base}/drip?chunks=3&delay=0.01") as response:
            assert await response.text() == "".join(f"chunk {i}/3\n" for i in (1, 2, 3))
    elif kind == "status":
        code = rng.choice([200, 204, 304, 404, 500, 503])
        async with session.get(f"{base}/status/{code}") as response:
            assert response.status == code, response.status
            await response.read()
    else:  # a WebSocket, left open or closed, between the other requests
        async with session.ws_connect(f"{base}/ws") as ws:
            for k in range(rng.randint(1, 4)):
                await ws.send_str(f"{rid}-{k}")
                assert await ws.receive_str(timeout=10) == f"{rid}-{k}"
            if rng.random() < 0.5:
                await ws.close()


async def mixed_traffic(
    base: str, clients: int, requests: int, tls: ssl.SSLContext | None = None
) -> Outcome:
    """`clients` sessions (two pooled connections each) sending `requests` each."""
    outcome = Outcome()

    async def client(number: int) -> None:
        rng = random.Random(number)
        connector = aiohttp.TCPConnector(ssl=tls if tls is not None else False, limit=2)
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for i in range(requests):
                rid, kind = f"c{number}r{i}", rng.choice(KINDS)
                outcome.counts[kind] += 1
                try:
                    await one(session, base, rid, kind, rng)
                except Exception as exc:  # each failure named, none stops the run
                    outcome.failures.append(f"{rid} {kind}: {exc!r}"[:300])

    await asyncio.gather(*(client(n) for n in range(clients)))
    return outcome
