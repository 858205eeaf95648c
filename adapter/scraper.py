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
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from redis.asyncio.connection import parse_url
from redis.exceptions import ResponseError

import podkit
from adapter import (
    clients,
    info,
    key_groups,
    keys,
    latency,
    redis_config,
    scripts,
    slowlog,
    streams,
)
from adapter.config import AdapterConfig
from adapter.connection import ERROR_KINDS, Command, Pipeline, RedisLink, ScrapeError, classify
from adapter.exposition import Exposition, Family, gauge, labels
from adapter.scripts import Script

log = logging.getLogger(__name__)

DEFAULT_DATABASES = 16

# The adapter's own families (redis_exporter's names where it has them).
UP = gauge("up", "Information about the Redis instance")
SCRAPES = Family("exporter_scrapes_total", "counter", "Current total redis scrapes.")
SCRAPE_DURATION = Family(
    "exporter_scrape_duration_seconds", "summary", "Durations of scrapes by the exporter"
)
LAST_DURATION = gauge(
    "exporter_last_scrape_duration_seconds", "Seconds the last scrape of Redis took"
)
CONNECT_TIME = gauge(
    "exporter_last_scrape_connect_time_seconds",
    "Seconds the last scrape spent connecting (0 when the connection was kept)",
)
PING_TIME = gauge("exporter_last_scrape_ping_time_seconds")
LAST_ERROR = gauge("exporter_last_scrape_error", "The last scrape error status.")
REQUEST_ERRORS = Family(
    "target_scrape_request_errors_total", "counter", "Errors in requests to the exporter"
)
SCRAPE_ERRORS = Family(
    "adapter_scrape_errors_total", "counter", "Failed scrapes of Redis by kind of failure"
)
BUILD_INFO = gauge("adapter_build_info", "Version of the adapter and its Python")


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
        self._scripts = scripts.load_scripts(config.script)
        self._pipeline = self._build_pipeline(config, self._scripts)
        self._home_db = int(parse_url(url).get("db") or 0)

    @staticmethod
    def _build_pipeline(config: AdapterConfig, user_scripts: tuple[Script, ...]) -> Pipeline:
        """Each source's commands, in the order their replies are read."""
        parts: list[tuple[str, Sequence[Command]]] = [
            ("config", redis_config.commands(config.config_command, config.include_config_metrics)),
            ("info", (("INFO", "ALL"),)),
            ("slowlog", slowlog.COMMANDS),
            ("latency", latency.COMMANDS),
        ]
        if config.export_client_list:
            parts.append(("clients", clients.COMMANDS))
        if user_scripts:
            parts.append(("scripts", scripts.commands(user_scripts)))
        return Pipeline(parts)

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
                    failure = await self._collect(out)
                if failure is not None:  # Redis answered; what it answered fails the scrape
                    error = ScrapeError("redis", failure)
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

    async def _collect(self, out: Exposition) -> str | None:
        """Fills `out`; returns why the scrape failed where metrics could still be served."""
        config = self.config
        if config.ping_on_connect:
            await self._ping(out)
        parts = self._pipeline.split(await self.link.round_trip(self._pipeline.commands))
        (info_reply,) = parts["info"]
        if isinstance(info_reply, ResponseError) and not _is_auth(info_reply):
            (info_reply,) = await self.link.round_trip((("INFO",),))  # servers without INFO ALL
        if isinstance(info_reply, Exception):
            raise classify(info_reply)
        sections = info.parse_info(info_reply.decode("utf-8", "replace"))

        db_count = redis_config.add_config(
            out,
            parts["config"],
            everything=config.include_config_metrics,
            redact=config.redact_config_metrics,
        )
        if sections.get("cluster", {}).get("cluster_enabled") == "1":
            db_count = 1  # a cluster node has one database
            await self._add_cluster_info(out)
        elif not db_count:
            db_count = DEFAULT_DATABASES

        info.add_info_fields(out, sections, include_system=config.include_system_metrics)
        info.add_server(out, sections)
        info.add_replication(out, sections)
        info.add_keyspace(out, sections, db_count)
        info.add_commandstats(out, sections)
        info.add_errorstats(out, sections)
        slowlog.add_slowlog(out, *parts["slowlog"])
        latency.add_latency(out, *parts["latency"])
        if config.export_client_list:
            clients.add_clients(out, parts["clients"][0], with_port=config.export_client_port)
        round_trip = self.link.round_trip
        if config.check_keys or config.check_single_keys or config.count_keys:
            await keys.add_key_metrics(
                out,
                round_trip,
                check_keys=config.check_keys,
                single_keys=config.check_single_keys,
                count_keys=config.count_keys,
                batch=config.check_keys_batch_size,
                home_db=self._home_db,
            )
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

    async def _ping(self, out: Exposition) -> None:
        # redis_exporter pings right after its per-scrape connect; the adapter keeps its
        # connection, so it pings at the start of every scrape: the same measurement.
        started = time.perf_counter()
        (reply,) = await self.link.round_trip((("PING",),))
        if isinstance(reply, Exception):
            log.error("PING of %s failed: %s", self.link.shown, reply)
        else:
            out.put(PING_TIME, time.perf_counter() - started)

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

        out.put(UP, 0.0 if error else 1.0)
        out.put(SCRAPES, float(c.scrapes))
        out.put(SCRAPE_DURATION, c.duration_sum, suffix="_sum")
        out.put(SCRAPE_DURATION, float(c.scrapes), suffix="_count")
        out.put(LAST_DURATION, took)
        out.put(CONNECT_TIME, connect_seconds)
        # redis_exporter puts the error text in `err`; here it is a short class (connect,
        # auth, timeout, tls, redis) so the label stays bounded. The text is in the log.
        out.put(LAST_ERROR, 1.0 if error else 0.0, labels((("err", error.kind if error else ""),)))
        out.put(REQUEST_ERRORS, float(self.request_errors[0]))
        for kind in ERROR_KINDS:
            out.put(SCRAPE_ERRORS, float(c.errors.get(kind, 0)), labels((("kind", kind),)))
        if self.own_metrics:
            out.put(
                BUILD_INFO,
                1.0,
                labels(
                    (("version", podkit.__version__), ("python_version", platform.python_version()))
                ),
            )


def _is_auth(reply: ResponseError) -> bool:
    text = str(reply)
    return text.startswith(("NOAUTH", "WRONGPASS", "NOPERM"))
