"""The aggregator program: migrations, then ingest and the API in one event loop until stopped."""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn

from aggregator import migrate
from aggregator.anonymous_probe import AnonymousCheck
from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.database import create_engine, make_sqlite_dir
from aggregator.errors import AggregatorError
from aggregator.ingest import Ingest
from aggregator.ledger import Ledger
from aggregator.ledger.bounds import Bounds
from aggregator.ledger.count_tasks import CountRules
from aggregator.ledger.policy import Policy
from aggregator.metrics import AggregatorMetrics
from aggregator.settings import AggregatorSettings, TelemetrySinkSettings
from aggregator.telemetry.sink import TelemetrySink
from aggregator.writer import Writer

log = logging.getLogger(__name__)

API_START_WAIT_S = 30.0
API_STOP_WAIT_S = 10.0


class ApiStartError(AggregatorError):
    pass


class _Server(uvicorn.Server):
    """Signals belong to the program (aggregator.main), not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_aggregator(
    settings: AggregatorSettings,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until `stop` is set; on_ready gets the API base URL once it is serving."""
    stop = stop or asyncio.Event()
    make_sqlite_dir(settings.database_url)
    await migrate.upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    metrics = AggregatorMetrics()
    writer = Writer(settings.database_url, metrics.commit_seconds.observe)
    sink = _sink(settings.telemetry)
    sinking = asyncio.create_task(sink.run(), name="telemetry") if sink else None
    try:
        ledger = Ledger(
            writer,
            site=settings.site,
            review_confidence_min=settings.review_confidence_min,
            review_epcs_moved_elsewhere=settings.review_epcs_moved_elsewhere,
            bounds=Bounds.from_settings(settings.bounds),
            stock_levels=sink is not None,
            policy=Policy.from_settings(settings.ledger, CountRules.from_settings(settings.counts)),
        )
        ingest = Ingest(settings, writer, ledger, metrics=metrics, sink=sink)
        metrics.watch(ingest, writer)
        check = AnonymousCheck(settings.mqtt)
        state = ApiState(
            engine,
            ledger,
            lambda: ingest.stats.connected,
            ingest.republish,
            refused=ingest.refused,
            mqtt_anonymous=lambda: check.anonymous,
            settings=settings.api,
            count_rules=CountRules.from_settings(settings.counts),
            metrics=metrics.render,
        )
        app = create_app(state)
        config = uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            log_level="warning",
            # The audit log names the client: believe X-Forwarded-For only from listed proxies.
            proxy_headers=bool(settings.api.trusted_proxies),
            forwarded_allow_ips=settings.api.trusted_proxies or None,
        )
        server = _Server(config)
        probe = asyncio.create_task(check.run(ingest.ready), name="anonymous probe")
        try:
            await _serve_until(stop, server, ingest, on_ready)
        finally:
            probe.cancel()
            await asyncio.wait({probe}, timeout=API_STOP_WAIT_S)
    finally:
        if sink is not None and sinking is not None:
            sinking.cancel()
            await asyncio.gather(sinking, return_exceptions=True)
            await sink.close()
        await asyncio.to_thread(writer.close)
        await engine.dispose()
        log.info("aggregator for site %s: stopped", settings.site)


def _sink(settings: TelemetrySinkSettings) -> TelemetrySink | None:
    """None when no url is set: then influxdb-client is not even imported."""
    if settings.url is None:
        return None
    from aggregator.telemetry.influx import InfluxWriter

    log.info("telemetry: writing to %s, bucket %s", settings.url, settings.bucket)
    return TelemetrySink(settings, InfluxWriter(settings))


async def _serve_until(
    stop: asyncio.Event,
    server: uvicorn.Server,
    ingest: Ingest,
    on_ready: Callable[[str], None] | None,
) -> None:
    ingest_task = asyncio.create_task(ingest.run(), name="ingest")
    api_task = asyncio.create_task(_serve(server), name="api")
    try:
        url = await _started(server, api_task)
        log.info("aggregator for site %s: API at %s", ingest.settings.site, url)
        if on_ready is not None:
            on_ready(url)
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait({stop_task, api_task, ingest_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        why = "asked to stop" if stop.is_set() else "a part of it ended"
        log.info("aggregator for site %s: stopping (%s)", ingest.settings.site, why)
        for task in (api_task, ingest_task):
            if task.done():
                task.result()  # an unexpected end of either part is an error
    finally:
        await _stop(server, api_task, ingest_task)


async def _stop(
    server: uvicorn.Server, api_task: asyncio.Task[None], ingest_task: asyncio.Task[None]
) -> None:
    """Graceful first (in-flight requests finish), then cancel; never wait without a bound."""
    server.should_exit = True
    ingest_task.cancel()
    await asyncio.wait({api_task, ingest_task}, timeout=API_STOP_WAIT_S)
    for task in (api_task, ingest_task):
        if not task.done():
            log.warning("%s did not stop within %ss; cancelling", task.get_name(), API_STOP_WAIT_S)
            task.cancel()
    await asyncio.wait({api_task, ingest_task}, timeout=API_STOP_WAIT_S)
    for task in (api_task, ingest_task):
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s ended with %r", task.get_name(), task.exception())


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit:
        host, port = server.config.host, server.config.port
        raise ApiStartError(f"the API could not start on {host}:{port}") from None


async def _started(server: uvicorn.Server, api_task: asyncio.Task[None]) -> str:
    deadline = asyncio.get_running_loop().time() + API_START_WAIT_S
    while not server.started:
        if api_task.done():
            api_task.result()
            raise ApiStartError("the API stopped before it started")
        if asyncio.get_running_loop().time() > deadline:
            raise ApiStartError(f"the API did not start within {API_START_WAIT_S}s")
        await asyncio.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"
