"""The edge pipeline under one TaskGroup.

    per device: source -> pump -> journal (SQLite, group commit) -> stage: recognizer -> outbox
    one publisher: outbox -> broker; acks -> outbox
    telemetry (when enabled): pumps -> tap; collector: tap + statuses -> sample queue -> publisher

Journal, recognizer state and outbox share one SQLite file and one writing connection
(store.py), which groups whatever writes are waiting into one transaction. Nothing here waits on the
network: a broker outage only grows the outbox, and a full outbox holds the stages back, whose
journals fill, which holds the sources back (back-pressure).

A graceful stop does not drain anything: what a source has handed over is in the journal, and
the next start resumes from there.
"""

import asyncio
import logging
from collections.abc import Sequence

from edge_agent.collector import Collector
from edge_agent.journal import Journal
from edge_agent.outbox import Outbox, utc_now
from edge_agent.publisher import Publisher
from edge_agent.readings import Journaled
from edge_agent.recognizers.base import Clock, Recognizer
from edge_agent.registry import build_device
from edge_agent.settings import EdgeSettings
from edge_agent.sources.base import Source
from edge_agent.stage import Stage
from edge_agent.store import Store
from edge_agent.taps import Tap
from edge_agent.telemetry_queue import SampleQueue
from stockwire.status import DeviceStatus

log = logging.getLogger(__name__)

Device = tuple[Source, Recognizer]
SOURCE_RESTART_S = 1.0


async def run_agent(
    settings: EdgeSettings,
    *,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
    sources: Sequence[Device] | None = None,
) -> None:
    """Run until `stop` is set (or forever); on a graceful stop publish a retained offline status.

    `sources` replaces building devices from `settings.devices` (tests inject in-memory ones).
    """
    clock = clock or utc_now
    devices = list(sources) if sources is not None else _build(settings, clock)
    store = await Store.open(settings.outbox.path)
    try:
        outbox = await Outbox.open(
            settings.outbox.path,
            settings.edge,
            settings.outbox.rows_max,
            clock=clock,
            unsent_txns_max=settings.outbox.unsent_txns_max,
            store=store,
        )
        journal = await Journal.open(
            store,
            [source.device for source, _ in devices],
            settings.queue_readings_max,
            clock,
            settings.fault_exit_after_readings,
        )
        await run_pipeline(settings, devices, outbox, journal, stop or asyncio.Event(), clock)
    finally:
        await store.close()


def _build(settings: EdgeSettings, clock: Clock) -> list[Device]:
    return [build_device(device, clock) for device in settings.devices]


async def run_pipeline(
    settings: EdgeSettings,
    devices: Sequence[Device],
    outbox: Outbox,
    journal: Journal,
    stop: asyncio.Event,
    clock: Clock,
) -> None:
    """Pumps, stages and the publisher on an open outbox and journal, until `stop` is set."""
    telemetry = settings.telemetry
    queue = SampleQueue(telemetry.queue_samples_max) if telemetry.enabled else None
    tap = Tap(telemetry.lane_weight_interval_s, clock()) if telemetry.enabled else None
    publisher = Publisher(settings, outbox, lambda: _states(devices), clock, telemetry=queue)
    tick_s = settings.tick_ms / 1000
    async with asyncio.TaskGroup() as tg:
        workers: list[asyncio.Task[None]] = []
        for source, recognizer in devices:
            stage = Stage(source.device, recognizer, journal, outbox, publisher.wake, tick_s, clock)
            workers.append(tg.create_task(stage.run(), name=f"stage {source.device}"))
            pump = _pump(source, journal, tap)
            workers.append(tg.create_task(pump, name=f"source {source.device}"))
        if queue is not None and tap is not None:
            sources = [source for source, _ in devices]
            collector = Collector(
                settings.edge, telemetry, sources, tap, queue, publisher, outbox, clock
            )
            workers.append(tg.create_task(collector.run(), name="telemetry"))
        publishing = tg.create_task(publisher.run(), name="publisher")
        await stop.wait()
        log.info("stopping: journaled readings resume at the next start")
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        publisher.request_stop()
        await publishing


def _states(devices: Sequence[Device]) -> dict[str, DeviceStatus]:
    return {source.device: source.status() for source, _ in devices}


async def _pump(source: Source, journal: Journal, tap: Tap | None) -> None:
    """Source -> journal, a batch at a time: the next read waits for the batch's commit.
    The tap (telemetry) sees each batch once it is journaled."""
    while True:
        try:
            async for batch in source.batches():
                await journal.append(source.device, batch)
                if tap is not None:
                    _observe(tap, source.device, batch)
            log.warning("device %s: source ended; restarting", source.device)
        except Exception:
            log.exception("device %s: source failed; restarting", source.device)
        await asyncio.sleep(SOURCE_RESTART_S)


def _observe(tap: Tap, device: str, batch: Sequence[Journaled]) -> None:
    """A telemetry bug must not restart the source (its readings are journaled already)."""
    try:
        tap.observe(device, batch)
    except Exception:
        log.exception("device %s: telemetry tap failed on a batch (readings unaffected)", device)
