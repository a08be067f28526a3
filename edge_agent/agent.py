"""The edge pipeline under one TaskGroup.

    per device: source -> bounded queue -> recognizer (feed + tick) -> outbox -> wake publisher
    one publisher: outbox -> broker; acks -> outbox

Nothing here waits on the network: a broker outage only grows the outbox, and a full outbox
holds the recognizer stages back (back-pressure), which in turn holds the sources back.
"""

import asyncio
import logging
from collections.abc import Sequence

from edge_agent.outbox import Outbox, utc_now
from edge_agent.publisher import Publisher
from edge_agent.readings import Reading, Scan
from edge_agent.recognizers.base import Clock, Output, Recognizer, Rejected
from edge_agent.registry import build_device
from edge_agent.settings import EdgeSettings
from edge_agent.sources.base import Source
from stockwire.status import DeviceStatus

log = logging.getLogger(__name__)

Device = tuple[Source, Recognizer]
SOURCE_RESTART_S = 1.0
DRAIN_S = 10.0


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
    stop = stop or asyncio.Event()
    devices = list(sources) if sources is not None else _build(settings, clock)
    outbox = await Outbox.open(
        settings.outbox.path,
        settings.edge,
        settings.outbox.rows_max,
        clock=clock,
        unsent_txns_max=settings.outbox.unsent_txns_max,
    )
    try:
        publisher = Publisher(settings, outbox, lambda: _states(devices), clock)
        await _pipeline(settings, devices, outbox, publisher, stop, clock)
    finally:
        await outbox.close()


def _build(settings: EdgeSettings, clock: Clock) -> list[Device]:
    return [build_device(device, clock) for device in settings.devices]


def _states(devices: Sequence[Device]) -> dict[str, DeviceStatus]:
    return {source.device: source.status() for source, _ in devices}


async def _pipeline(
    settings: EdgeSettings,
    devices: Sequence[Device],
    outbox: Outbox,
    publisher: Publisher,
    stop: asyncio.Event,
    clock: Clock,
) -> None:
    tick_s = settings.tick_ms / 1000
    async with asyncio.TaskGroup() as tg:
        pumps: list[asyncio.Task[None]] = []
        stages: list[asyncio.Task[None]] = []
        for source, recognizer in devices:
            queue: asyncio.Queue[Reading | None] = asyncio.Queue(settings.queue_readings_max)
            pumps.append(tg.create_task(_pump(source, queue), name=f"source {source.device}"))
            stage = _Stage(source.device, recognizer, outbox, publisher, tick_s, clock)
            stages.append(tg.create_task(stage.run(queue), name=f"stage {source.device}"))
        publishing = tg.create_task(publisher.run(), name="publisher")
        await stop.wait()
        log.info("stopping: draining %d device queue(s)", len(devices))
        for pump in pumps:
            pump.cancel()  # the pump then queues an end marker behind the last reading
        await _drain(pumps + stages)
        publisher.request_stop()
        await publishing


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """Let stages store what is queued; bounded, since a full outbox may never free up."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=DRAIN_S)
    for task in late:
        log.warning("stopping: %s did not drain within %ss", task.get_name(), DRAIN_S)
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def _pump(source: Source, queue: "asyncio.Queue[Reading | None]") -> None:
    """Source -> queue. Readings are kept in order; a full queue holds the source back."""
    full = False
    try:
        while True:
            try:
                async for reading in source.readings():
                    if queue.full() and not full:
                        log.warning(
                            "device %s: reading queue full (%d)", source.device, queue.maxsize
                        )
                    full = queue.full()
                    await queue.put(reading)
                log.warning("device %s: source ended; restarting", source.device)
            except Exception:
                log.exception("device %s: source failed; restarting", source.device)
            await asyncio.sleep(SOURCE_RESTART_S)
    finally:
        # Tell the stage to finish what is queued; never blocks (the stage is draining).
        await queue.put(None)


class _Stage:
    """Recognizer stage of one device: feed readings, tick every tick_s, store the outputs."""

    def __init__(
        self,
        device: str,
        recognizer: Recognizer,
        outbox: Outbox,
        publisher: Publisher,
        tick_s: float,
        clock: Clock,
    ) -> None:
        self.device = device
        self._clock = clock
        self._recognizer = recognizer
        self._outbox = outbox
        self._publisher = publisher
        self._tick_s = tick_s

    async def run(self, queue: "asyncio.Queue[Reading | None]") -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._tick_s
        while True:
            if loop.time() >= next_tick:
                next_tick = loop.time() + self._tick_s
                await self._store(self._guard(None))
                continue
            try:
                async with asyncio.timeout_at(next_tick):
                    reading = await queue.get()
            except TimeoutError:
                continue
            if reading is None:
                await self._store(self._guard(None))
                return
            await self._store(self._guard(reading))

    def _guard(self, reading: Reading | None) -> Sequence[Output]:
        """A recognizer bug must not stop the device: keep the reading as rejected."""
        try:
            if reading is None:
                return self._recognizer.tick()
            return self._recognizer.feed(reading)
        except Exception as e:
            log.exception("device %s: recognizer failed", self.device)
            reason = f"recognizer error: {e!r}"
            if isinstance(reading, Scan):
                return [Rejected(self.device, reading.raw, reason, reading.at)]
            return [Rejected(self.device, repr(reading), reason, self._clock())]

    async def _store(self, outputs: Sequence[Output]) -> None:
        drafts = [o for o in outputs if not isinstance(o, Rejected)]
        for rejected in (o for o in outputs if isinstance(o, Rejected)):
            log.info("device %s: rejected %r: %s", rejected.device, rejected.raw, rejected.reason)
            await self._outbox.add_rejected(rejected)
        if drafts and await self._outbox.add(drafts):
            self._publisher.wake()
