"""One scrape of one Redis: a single pipelined round trip, then the exposition text.

Collect when scraped, never on a timer: every /metrics request asks Redis afresh and builds
new families, so nothing stale is ever served. Scrapes of one target are serialised on its
kept connection, as redis_exporter serialises them with a mutex.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from redis.asyncio.connection import parse_url
from redis.exceptions import ResponseError

from adapter import (
    clients,
    cluster,
    info,
    key_groups,
    keys,
    latency,
    redis_config,
    scripts,
    sentinel,
    slowlog,
    streams,
)
from adapter.config import AdapterConfig
from adapter.connection import Command, Pipeline, RedisLink, ScrapeError, classify
from adapter.own_metrics import Counters, add_own, process_metrics
from adapter.scripts import Script
from podkit.exposition import Exposition, gauge

log = logging.getLogger(__name__)

DEFAULT_DATABASES = 16

# What the target is, as its last INFO said: each kind gets the round trip it answers.
Mode = Literal["standalone", "cluster", "sentinel"]
MODES: tuple[Mode, ...] = ("standalone", "cluster", "sentinel")

PING_TIME = gauge("exporter_last_scrape_ping_time_seconds")


class Scraper:
    def __init__(
        self,
        url: str,
        config: AdapterConfig,
        *,
        own_metrics: bool,
        request_errors: list[int] | None = None,
    ) -> None:
        self.link = RedisLink(url, config)
        self.config = config
        self.own_metrics = own_metrics and not config.redis_only_metrics
        self.counters = Counters()
        # Shared with the web layer: bad /scrape requests, counted for every target's output.
        self.request_errors = request_errors if request_errors is not None else [0]
        self._lock = asyncio.Lock()
        self._scripts = scripts.load_scripts(config.script)
        self._pipelines = {m: self._build_pipeline(config, self._scripts, m) for m in MODES}
        self._mode: Mode = "cluster" if config.is_cluster else "standalone"
        self._home_db = int(parse_url(url).get("db") or 0)
        self._cluster_keys = cluster.ClusterKeys(url, config) if config.is_cluster else None
        self._said_not_cluster = False

    @staticmethod
    def _cluster_commands(config: AdapterConfig) -> tuple[Command, ...]:
        if config.is_cluster and (config.check_keys or config.check_single_keys):
            return (cluster.INFO_COMMAND, cluster.SLOTS_COMMAND)
        return (cluster.INFO_COMMAND,)

    @classmethod
    def _build_pipeline(
        cls, config: AdapterConfig, user_scripts: tuple[Script, ...], mode: Mode
    ) -> Pipeline:
        """Each source's commands, in the order their replies are read. A Sentinel answers
        neither CONFIG, SLOWLOG nor LATENCY: it is not asked (redis_exporter asks and gets
        errors, which export nothing either)."""
        parts: list[tuple[str, Sequence[Command]]] = []
        if mode != "sentinel":
            everything = config.include_config_metrics
            parts.append(("config", redis_config.commands(config.config_command, everything)))
        parts.append(("info", info.COMMANDS))
        if mode == "sentinel":
            parts.append(("sentinel", (sentinel.MASTERS_COMMAND,)))
        else:
            parts += [("slowlog", slowlog.COMMANDS), ("latency", latency.COMMANDS)]
            if not config.exclude_latency_histogram_metrics:
                parts.append(("histogram", latency.HISTOGRAM_COMMANDS))
        if mode == "cluster":
            parts.append(("cluster", cls._cluster_commands(config)))
        if config.export_client_list:
            parts.append(("clients", clients.COMMANDS))
        if user_scripts:
            parts.append(("scripts", scripts.commands(user_scripts)))
        return Pipeline(parts)

    async def close(self) -> None:
        await self.link.close()
        if self._cluster_keys is not None:
            await self._cluster_keys.close()

    async def cluster_nodes(self) -> list[str]:
        """CLUSTER NODES of this target as "ip:port" strings (/discover-cluster-nodes).
        Raises what the connection raises, or the ResponseError Redis answered."""
        async with self._lock, asyncio.timeout(self.config.connection_timeout):
            await self.link.connect()
            (reply,) = await self.link.round_trip((cluster.NODES_COMMAND,))
        if isinstance(reply, Exception):
            raise reply
        return cluster.parse_nodes(keys.text(reply))

    async def scrape(self, budget: float | None = None) -> bytes:
        """Exposition text for this target; Redis trouble becomes redis_up 0, never an error."""
        async with self._lock:
            out = Exposition(self.config.namespace)
            started = time.perf_counter()
            connect_seconds = 0.0
            error: ScrapeError | None = None
            timeout = (
                self.config.connection_timeout
                if budget is None
                else min(budget, self.config.connection_timeout)
            )
            try:
                async with asyncio.timeout(timeout):
                    connect_seconds = await self.link.connect()
                    failure = await self._collect(out)
                if failure is not None:  # Redis answered; what it answered fails the scrape
                    error = ScrapeError("redis", failure)
            except Exception as exc:
                error = classify(exc)
                if error.kind == "internal":
                    log.exception("scrape of %s: %s", self.link.shown, error)
                await self.link.close()
            took = time.perf_counter() - started
            add_own(
                out,
                self.counters,
                error,
                took=took,
                connect_seconds=connect_seconds,
                request_errors=self.request_errors[0],
                shown=self.link.shown,
                build_info=self.own_metrics,
            )
            body = out.render()
        if self.own_metrics:
            body += process_metrics()
        return body

    async def _collect(self, out: Exposition) -> str | None:
        """Fills `out`; returns why the scrape failed where metrics could still be served."""
        config = self.config
        if config.ping_on_connect:
            await self._ping(out)
        pipeline = self._pipelines[self._mode]
        parts = pipeline.split(await self.link.round_trip(pipeline.commands))
        (info_reply,) = parts["info"]
        if isinstance(info_reply, ResponseError) and not _is_auth(info_reply):
            (info_reply,) = await self.link.round_trip(info.FALLBACK_COMMANDS)
        if isinstance(info_reply, Exception):
            raise classify(info_reply)
        sections = info.parse_info(info_reply.decode("utf-8", "replace"))
        mode = self._mode = self._detect(sections)
        round_trip = self.link.round_trip

        db_count = redis_config.add_config(
            out,
            parts.get("config", ()),
            everything=config.include_config_metrics,
            redact=config.redact_config_metrics,
        )
        if mode == "cluster":
            db_count = 1  # a cluster node has one database
            if "cluster" not in parts:  # the first scrape of a node not known to be one
                parts["cluster"] = await round_trip(self._cluster_commands(config))
            cluster.add_cluster_info(out, parts["cluster"][0])
        elif not db_count:
            db_count = DEFAULT_DATABASES

        info.add_info_fields(out, sections, include_system=config.include_system_metrics)
        info.add_server(out, sections)
        info.add_replication(out, sections)
        info.add_keyspace(out, sections, db_count)
        info.add_commandstats(out, sections)
        info.add_errorstats(out, sections)
        if "slowlog" in parts:
            slowlog.add_slowlog(out, *parts["slowlog"])
        if "latency" in parts:
            latency.add_latency(out, *parts["latency"])
        if "histogram" in parts:
            latency.add_histogram(out, parts["histogram"][0], sections)
        if mode == "sentinel":
            sentinel.add_info(out, sections)
            masters = parts.get("sentinel") or await round_trip((sentinel.MASTERS_COMMAND,))
            await sentinel.add_masters(out, round_trip, masters[0])
        if config.export_client_list:
            clients.add_clients(out, parts["clients"][0], with_port=config.export_client_port)
        await self._add_keys(out, mode, parts.get("cluster", ()))
        if config.check_streams or config.check_single_streams:
            await streams.add_stream_metrics(
                out,
                round_trip,
                patterns=config.check_streams,
                singles=config.check_single_streams,
                batch=config.check_keys_batch_size,
                home_db=self._home_db,
            )
        await key_groups.add_key_group_metrics(
            out,
            round_trip,
            patterns=config.check_key_groups,
            max_groups=config.max_distinct_key_groups,
            db_count=db_count,
            batch=config.check_keys_batch_size,
            home_db=self._home_db,
        )
        if self._scripts:
            return await scripts.add_script_values(out, round_trip, self._scripts, parts["scripts"])
        return None

    def _detect(self, sections: info.Sections) -> Mode:
        if sentinel.is_sentinel(sections):
            return "sentinel"
        if sections.get("cluster", {}).get("cluster_enabled") == "1":
            return "cluster"
        if self.config.is_cluster and not self._said_not_cluster:
            log.warning(
                "--is-cluster, but %s is not in cluster mode: key checks run on it alone",
                self.link.shown,
            )
            self._said_not_cluster = True
        return "standalone"

    async def _add_keys(self, out: Exposition, mode: Mode, cluster_replies: Sequence[Any]) -> None:
        """The key checks: across the cluster's masters with --is-cluster on a cluster node
        (but --count-keys, which 1.45 runs on the configured node), else on the target."""
        config = self.config
        across = self._cluster_keys is not None and mode == "cluster"
        if across and (config.check_keys or config.check_single_keys):
            assert self._cluster_keys is not None
            await self._cluster_keys.add_key_metrics(
                out,
                cluster_replies[1] if len(cluster_replies) > 1 else None,
                check_keys=config.check_keys,
                single_keys=config.check_single_keys,
                batch=config.check_keys_batch_size,
            )
        check_keys = () if across else config.check_keys
        single_keys = () if across else config.check_single_keys
        if check_keys or single_keys or config.count_keys:
            await keys.add_key_metrics(
                out,
                self.link.round_trip,
                check_keys=check_keys,
                single_keys=single_keys,
                count_keys=config.count_keys,
                batch=config.check_keys_batch_size,
                home_db=self._home_db,
            )

    async def _ping(self, out: Exposition) -> None:
        # redis_exporter pings right after its per-scrape connect; the adapter keeps its
        # connection, so it pings at the start of every scrape: the same measurement.
        started = time.perf_counter()
        (reply,) = await self.link.round_trip((("PING",),))
        if isinstance(reply, Exception):
            log.error("PING of %s failed: %s", self.link.shown, reply)
        else:
            out.put(PING_TIME, time.perf_counter() - started)


def _is_auth(reply: ResponseError) -> bool:
    text = str(reply)
    return text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))
