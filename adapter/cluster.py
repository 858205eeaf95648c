"""A target in a Redis Cluster: CLUSTER INFO → cluster_* families, key checks on the masters
that own the keys (--is-cluster), and the node list behind /discover-cluster-nodes.

redis_exporter 1.45 with -is-cluster sends --check-keys and --check-single-keys through a
cluster client (redisc) that follows MOVED to the owning master; --count-keys, streams, key
groups and scripts stay on the configured node. The adapter does the same, with one
difference: 1.45's cluster client runs each SCAN of a --check-keys pattern on whichever master
it happens to bind to (a random one), so it reports that master's share of the matching keys;
the adapter SCANs every master and reports all of them, which is what the flag asks for.

The slot map comes from CLUSTER SLOTS, asked in the scrape's main round trip; connections to
the other masters are kept between scrapes, like the one to the configured node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from redis.crc import key_slot
from redis.exceptions import ResponseError

from adapter import keys
from adapter.config import AdapterConfig
from adapter.connection import RedisLink, connection_kwargs
from adapter.info import add_info_fields, parse_info
from adapter.keys import KeySpec, text
from podkit.exposition import Exposition

log = logging.getLogger(__name__)

INFO_COMMAND = ("CLUSTER", "INFO")
SLOTS_COMMAND = ("CLUSTER", "SLOTS")
NODES_COMMAND = ("CLUSTER", "NODES")

# CLUSTER NODES' second field: ip:port@cport[,hostname] (redis_exporter's reNodeAddress)
_NODE_ADDRESS = re.compile(r"^(.+):(\d+)@(\d+)(?:,(.+))?")

Slots = list[tuple[int, int, str]]  # (first slot, last slot, "host:port" of the master)


def add_cluster_info(out: Exposition, reply: Any) -> None:
    """CLUSTER INFO's fields, mapped like INFO's (cluster_state ok → 1)."""
    if isinstance(reply, bytes):
        fields = parse_info(reply.decode("utf-8", "replace")).get("", {})
        add_info_fields(out, {"cluster info": fields}, include_system=False)


def parse_nodes(reply: str) -> list[str]:
    """CLUSTER NODES → every node's "ip:port", in the order Redis lists them; nodes without
    an address (`:0@0`, not yet met) are left out, as redis_exporter leaves them out."""
    nodes = []
    for line in reply.split("\n"):
        fields = line.split()
        if len(fields) >= 2:
            found = _NODE_ADDRESS.match(fields[1])
            if found:
                nodes.append(f"{found.group(1)}:{found.group(2)}")
    return nodes


def discovery_document(nodes: Sequence[str], redis_addr: str) -> bytes:
    """Prometheus' http_sd format, byte for byte as redis_exporter writes it (Go's
    json.MarshalIndent with two spaces, no trailing newline)."""
    scheme = "rediss://" if redis_addr.startswith("rediss://") else "redis://"
    document = [{"targets": [scheme + node for node in nodes], "labels": {}}]
    return json.dumps(document, indent=2).encode()


def parse_slots(reply: Any) -> Slots:
    """CLUSTER SLOTS → (first, last, master "host:port") ranges; [] when refused."""
    slots: Slots = []
    if not isinstance(reply, list):
        return slots
    for entry in reply:
        if isinstance(entry, list) and len(entry) >= 3 and isinstance(entry[2], list):
            host, port = text(entry[2][0]), int(entry[2][1])
            shown = f"[{host}]" if ":" in host else host
            slots.append((int(entry[0]), int(entry[1]), f"{shown}:{port}"))
    return slots


def owner(slots: Slots, key: bytes) -> str | None:
    slot = key_slot(key)
    for first, last, address in slots:
        if first <= slot <= last:
            return address
    return None


def node_url(seed_url: str, address: str, password: str) -> str:
    """The URL of another node: the seed's scheme, user and password, the node's address."""
    parts = urlsplit(seed_url)
    scheme = "rediss" if parts.scheme == "rediss" else "redis"
    user = quote(parts.username or "", safe="")
    secret = quote(password, safe="")
    userinfo = f"{user}:{secret}@" if secret else (f"{user}@" if user else "")
    return f"{scheme}://{userinfo}{address}"


class ClusterKeys:
    """--check-keys and --check-single-keys across the masters of one cluster."""

    def __init__(self, seed_url: str, config: AdapterConfig) -> None:
        self._seed_url = seed_url
        self._config = config
        self._links: dict[str, RedisLink] = {}
        self._said: set[str] = set()  # errors logged once, not on every scrape

    def _link(self, address: str) -> RedisLink:
        link = self._links.get(address)
        if link is None:
            password = str(connection_kwargs(self._seed_url, self._config).get("password") or "")
            link = RedisLink(node_url(self._seed_url, address, password), self._config)
            self._links[address] = link
        return link

    def _say_once(self, message: str, *args: object) -> None:
        said = message % args
        if said not in self._said:
            if len(self._said) > 100:  # bounded, whatever the cluster answers
                self._said.clear()
            self._said.add(said)
            log.error("%s", said)

    async def add_key_metrics(
        self,
        out: Exposition,
        slots_reply: Any,
        *,
        check_keys: Sequence[KeySpec],
        single_keys: Sequence[KeySpec],
        batch: int,
    ) -> None:
        slots = parse_slots(slots_reply)
        if not slots:
            self._say_once("--is-cluster: no slot map from CLUSTER SLOTS (%s)", slots_reply)
            return
        masters = sorted({address for _, _, address in slots})
        for address in set(self._links) - set(masters):  # a master no more: drop its link
            await self._links.pop(address).close()
        for db, key in (*check_keys, *single_keys):
            if db != 0:
                self._say_once("--is-cluster: db%d=%s skipped, a cluster has only db0", db, key)
        patterns = [key for db, key in check_keys if db == 0]
        names: dict[str, list[bytes]] = {address: [] for address in masters}
        for db, key in single_keys:
            home = owner(slots, key.encode()) if db == 0 else None
            if home is not None:
                names[home].append(key.encode())
        results = await asyncio.gather(
            *(self._node(out, address, names[address], patterns, batch) for address in masters),
            return_exceptions=True,
        )
        for address, result in zip(masters, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                self._say_once("--is-cluster: key checks on %s failed: %s", address, result)

    async def _node(
        self, out: Exposition, address: str, names: list[bytes], patterns: list[str], batch: int
    ) -> None:
        link = self._link(address)
        if await link.connect():  # a new connection: does this master take it?
            (pong,) = await link.round_trip((("PING",),))
            if isinstance(pong, Exception):  # e.g. NOAUTH: say why, try afresh next scrape
                await link.close()
                raise pong
        for pattern in patterns:
            try:
                names.extend(await keys.scan(link.round_trip, pattern, batch))
            except ResponseError as exc:
                log.error("SCAN for %r on %s failed: %s", pattern, address, exc)
        if names:
            await keys.add_sizes(out, link.round_trip, "db0", list(dict.fromkeys(names)))

    async def close(self) -> None:
        links, self._links = self._links, {}
        for link in links.values():
            await link.close()
