"""The adapter's HTTP side: /metrics for its own Redis, /scrape?target= for others.

Endpoints follow redis_exporter (/metrics, /scrape, /health, an index page) plus the
probes every podkit service has (/healthz, /readyz).
"""

from __future__ import annotations

import fnmatch
import logging
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from redis.exceptions import ResponseError

from adapter import auth
from adapter.cluster import discovery_document
from adapter.config import AdapterConfig
from adapter.connection import classify
from adapter.flag_values import parse_redis_addr
from adapter.scraper import Scraper
from podkit.admin import add_health_routes
from podkit.exposition import CONTENT_TYPE
from podkit.health import Health
from podkit.options import OptionError, mask_credentials

log = logging.getLogger(__name__)

MAX_TARGETS = 64  # kept connections for /scrape targets; the least recently used goes first
SCRAPE_TIMEOUT_MARGIN = 0.25  # answer this much before Prometheus gives up on the scrape


class Targets:
    """The default target's scraper and an LRU of scrapers for /scrape targets."""

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.request_errors = [0]
        self.default = Scraper(
            config.redis_addr, config, own_metrics=True, request_errors=self.request_errors
        )
        self._others: OrderedDict[str, Scraper] = OrderedDict()

    def allowed(self, url: str) -> bool:
        if url == self.config.redis_addr:
            return True
        return any(fnmatch.fnmatchcase(url, pattern) for pattern in self.config.scrape_allow)

    async def get(self, url: str) -> Scraper:
        if url == self.config.redis_addr:
            return self.default
        scraper = self._others.pop(url, None)
        if scraper is None:
            scraper = Scraper(
                url, self.config, own_metrics=False, request_errors=self.request_errors
            )
        self._others[url] = scraper
        while len(self._others) > MAX_TARGETS:
            _, oldest = self._others.popitem(last=False)
            await oldest.close()
        return scraper

    async def close(self) -> None:
        await self.default.close()
        for scraper in self._others.values():
            await scraper.close()
        self._others.clear()


TARGETS = web.AppKey("targets", Targets)
HEALTH = web.AppKey("health", Health)
AUTH = web.AppKey("auth", auth.BasicAuth)


def scrape_budget(request: web.Request) -> float | None:
    """Prometheus says how long it waits; answer (with redis_up 0 if need be) before that."""
    header = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    try:
        return max(float(header) - SCRAPE_TIMEOUT_MARGIN, 0.1) if header else None
    except ValueError:
        return None


def metrics_response(request: web.Request, body: bytes) -> web.Response:
    headers = {"Content-Type": CONTENT_TYPE}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        # Inline and at level 1: a thread pool (aiohttp's enable_compression) costs more
        # than compressing ~30 KB here.
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        body = compressor.compress(body) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def metrics(request: web.Request) -> web.Response:
    scraper = request.app[TARGETS].default
    body = await scraper.scrape(scrape_budget(request))
    basic_auth = request.app.get(AUTH)
    if basic_auth is not None:
        body += basic_auth.exposition(scraper.config.namespace)
    return metrics_response(request, body)


async def scrape(request: web.Request) -> web.Response:
    targets = request.app[TARGETS]
    raw = request.query.get("target", "").strip()
    if not raw:
        targets.request_errors[0] += 1
        return web.Response(status=400, text="'target' parameter must be specified\n")
    try:
        url = parse_redis_addr(raw)
    except OptionError as exc:
        targets.request_errors[0] += 1
        return web.Response(status=400, text=f"invalid target: {exc}\n")
    if not targets.allowed(url):
        targets.request_errors[0] += 1
        log.warning("refused /scrape of %s: not in --scrape-allow", mask_credentials(url))
        return web.Response(
            status=403,
            text=f"target {mask_credentials(url)} is not allowed: only --redis-addr and targets "
            "matching --scrape-allow (REDIS_EXPORTER_SCRAPE_ALLOW) may be scraped\n",
        )
    scraper = await targets.get(url)
    return metrics_response(request, await scraper.scrape(scrape_budget(request)))


async def discover_cluster_nodes(request: web.Request) -> web.Response:
    """redis_exporter's http_sd endpoint: every node of the cluster --redis-addr is in, as
    Prometheus targets for /scrape. Its statuses and messages are redis_exporter's too."""
    scraper = request.app[TARGETS].default
    if not scraper.config.is_cluster:
        return _plain_error(400, "The discovery endpoint is only available on a redis cluster")
    try:
        nodes = await scraper.cluster_nodes()
    except ResponseError as exc:
        return _plain_error(500, f"Failed to fetch cluster nodes: {exc}")
    except Exception as exc:  # unreachable, refused, timed out: said, never a traceback
        error = classify(exc)
        log.error("/discover-cluster-nodes: %s: %s", scraper.link.shown, error)
        return _plain_error(500, f"Couldn't connect to redis cluster: {error}")
    body = discovery_document(nodes, scraper.config.redis_addr)
    return web.Response(body=body, content_type="application/json")


def _plain_error(status: int, message: str) -> web.Response:
    # As Go's http.Error: the text and a newline, text/plain, nosniff.
    return web.Response(
        status=status,
        text=message + "\n",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")  # redis_exporter's /health


def index_handler(config: AdapterConfig) -> Callable[[web.Request], Awaitable[web.Response]]:
    page = (
        "<html><head><title>pod-patterns adapter</title></head><body>"
        "<h1>Redis exporter (pod-patterns adapter)</h1>"
        f'<p><a href="{config.web_telemetry_path}">Metrics</a></p></body></html>'
    ).encode()

    async def index(_request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html")

    return index


def create_app(config: AdapterConfig, health_state: Health | None = None) -> web.Application:
    app = web.Application()
    if config.basic_auth_username:
        app[AUTH] = auth.BasicAuth(config.basic_auth_username, config.basic_auth_password)
        app.middlewares.append(auth.middleware(app[AUTH]))
    app[TARGETS] = Targets(config)
    app[HEALTH] = health_state or Health()

    async def close_targets(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[TARGETS].close()

    app.cleanup_ctx.append(close_targets)
    app.router.add_get(config.web_telemetry_path, metrics)
    app.router.add_get("/scrape", scrape)
    app.router.add_get("/health", health)
    app.router.add_get("/discover-cluster-nodes", discover_cluster_nodes)
    app.router.add_get("/", index_handler(config))
    add_health_routes(app, app[HEALTH])
    return app
