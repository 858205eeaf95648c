"""One scrape of one Redis: a single pipelined round trip, then the exposition text.

Collect when scraped, never on a timer: every /metrics request asks Redis afresh and builds
new families, so nothing stale is ever served. Scrapes of one target are serialised on its
kept connection, as redis_exporter serialises them with a mutex.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from redis.asyncio.connection import parse_url
from redis.exceptions import ResponseError

import podkit
from adapter import info, keys, latency, slowlog
from adapter.config import AdapterConfig
from adapter.connection import ERROR_KINDS, RedisLink, ScrapeError, classify
from adapter.exposition import Exposition, labels

log = logging.getLogger(__name__)

CONFIG_KEYS = ("maxmemory", "maxclients", "io-threads")  # exported as config_<key>
DEFAULT_DATABASES = 16


@dataclass
class Counters:
    """What the adapter itself counts for one target, across scrapes."""

    scrapes: int = 0
    duration_sum: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


def _address_space_limit() -> float:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    # Go's client reports "unlimited" as the largest uint64; dashboards compare against it.
    return float(2**64 - 1) if soft == resource.RLIM_INFINITY else float(soft)


def process_metrics() -> bytes:
    """The adapter's own process_* and python_* metrics (redis_exporter has process_* too)."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    limit = _address_space_limit()
    return (
        generate_latest(registry)
        + (
            "# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available "
            "in bytes.\n# TYPE process_virtual_memory_max_bytes gauge\n"
            f"process_virtual_memory_max_bytes {limit!r}\n"
        ).encode()
    )


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
        self._commands = self._build_commands(config)
        self._home_db = int(parse_url(url).get("db") or 0)

    @staticmethod
    def _build_commands(config: AdapterConfig) -> tuple[tuple[str, ...], ...]:
        # One CONFIG GET per key: Redis before 7.0 takes a single pattern per call, and
        # named keys cost Redis ~5 µs where `CONFIG GET *` costs ~130 µs.
        config_gets = tuple(
            (config.config_command, "GET", key) for key in (*CONFIG_KEYS, "databases")
        )
        return (*config_gets, ("INFO", "ALL"), *slowlog.COMMANDS, *latency.COMMANDS)

    async def close(self) -> None:
        await self.link.close()

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
                    await self._collect(out)
            except Exception as exc:
                error = classify(exc)
                if error.kind == "internal":
                    log.exception("scrape of %s: %s", self.link.shown, error)
                await self.link.close()
            took = time.perf_counter() - started
            self._add_own(out, error, took, connect_seconds)
            body = out.render()
        if self.own_metrics:
            body += process_metrics()
        return body

    async def _collect(self, out: Exposition) -> None:
        replies = await self.link.round_trip(self._commands)
        n = len(CONFIG_KEYS)
        config_replies, db_reply, info_reply = replies[:n], replies[n], replies[n + 1]
        slow_len, slow_last, latest = replies[n + 2], replies[n + 3], replies[n + 4]
        if isinstance(info_reply, ResponseError) and not _is_auth(info_reply):
            (info_reply,) = await self.link.round_trip((("INFO",),))  # servers without INFO ALL
        if isinstance(info_reply, Exception):
            raise classify(info_reply)
        sections = info.parse_info(info_reply.decode("utf-8", "replace"))

        db_count = _config_value(db_reply) or 0
        for key, reply in zip(CONFIG_KEYS, config_replies, strict=True):
            value = _config_value(reply)
            if value is not None:
                name = "config_" + key.replace("-", "_")
                out.add(name, "gauge", f"{name} metric", value)
        if sections.get("cluster", {}).get("cluster_enabled") == "1":
            db_count = 1  # a cluster node has one database
            await self._add_cluster_info(out)
        elif not db_count:
            db_count = DEFAULT_DATABASES

        info.add_info_fields(out, sections, include_system=self.config.include_system_metrics)
        info.add_server(out, sections)
        info.add_replication(out, sections)
        info.add_keyspace(out, sections, int(db_count))
        info.add_commandstats(out, sections)
        info.add_errorstats(out, sections)
        slowlog.add_slowlog(out, slow_len, slow_last)
        latency.add_latency(out, latest)
        if self.config.check_keys or self.config.check_single_keys or self.config.count_keys:
            await keys.add_key_metrics(
                out,
                self.link.round_trip,
                check_keys=self.config.check_keys,
                single_keys=self.config.check_single_keys,
                count_keys=self.config.count_keys,
                batch=self.config.check_keys_batch_size,
                home_db=self._home_db,
            )

    async def _add_cluster_info(self, out: Exposition) -> None:
        (reply,) = await self.link.round_trip((("CLUSTER", "INFO"),))
        if isinstance(reply, bytes):
            fields = info.parse_info(reply.decode("utf-8", "replace")).get("", {})
            info.add_info_fields(out, {"cluster info": fields}, include_system=False)

    def _add_own(
        self, out: Exposition, error: ScrapeError | None, took: float, connect_seconds: float
    ) -> None:
        c = self.counters
        c.scrapes += 1
        c.duration_sum += took
        if error is not None:
            c.errors[error.kind] = c.errors.get(error.kind, 0) + 1
            message = str(error)
            if message != c.last_error:  # say it once, not every scrape
                log.error("scrape of %s failed: %s", self.link.shown, message)
            c.last_error = message
        elif c.last_error:
            log.info("scrape of %s works again", self.link.shown)
            c.last_error = ""

        out.add("up", "gauge", "Information about the Redis instance", 0.0 if error else 1.0)
        out.add(
            "exporter_scrapes_total", "counter", "Current total redis scrapes.", float(c.scrapes)
        )
        out.add(
            "exporter_scrape_duration_seconds",
            "summary",
            "Durations of scrapes by the exporter",
            c.duration_sum,
            suffix="_sum",
        )
        out.add(
            "exporter_scrape_duration_seconds",
            "summary",
            "Durations of scrapes by the exporter",
            float(c.scrapes),
            suffix="_count",
        )
        out.add(
            "exporter_last_scrape_duration_seconds",
            "gauge",
            "Seconds the last scrape of Redis took",
            took,
        )
        out.add(
            "exporter_last_scrape_connect_time_seconds",
            "gauge",
            "Seconds the last scrape spent connecting (0 when the connection was kept)",
            connect_seconds,
        )
        # redis_exporter puts the error text in `err`; here it is a short class (connect,
        # auth, timeout, tls, redis) so the label stays bounded. The text is in the log.
        out.add(
            "exporter_last_scrape_error",
            "gauge",
            "The last scrape error status.",
            1.0 if error else 0.0,
            labels((("err", error.kind if error else ""),)),
        )
        out.add(
            "target_scrape_request_errors_total",
            "counter",
            "Errors in requests to the exporter",
            float(self.request_errors[0]),
        )
        for kind in ERROR_KINDS:
            out.add(
                "adapter_scrape_errors_total",
                "counter",
                "Failed scrapes of Redis by kind of failure",
                float(c.errors.get(kind, 0)),
                labels((("kind", kind),)),
            )
        if self.own_metrics:
            out.add(
                "adapter_build_info",
                "gauge",
                "Version of the adapter and its Python",
                1.0,
                labels(
                    (("version", podkit.__version__), ("python_version", platform.python_version()))
                ),
            )


def _is_auth(reply: ResponseError) -> bool:
    text = str(reply)
    return text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))


def _config_value(reply: Any) -> float | None:
    # CONFIG GET answers [name, value] (RESP2) — an empty list when the key is unknown.
    if isinstance(reply, list) and len(reply) == 2:
        value = info.number(reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1]))
        return value
    return None
