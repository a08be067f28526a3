"""Turns the tap, the devices' statuses and the agent's own health into telemetry samples.

Every `telemetry.interval_s`: one `agent` sample, one `device_health` per device, and the tap's
`rfid_antenna` and `scans` samples; every `telemetry.lane_weight_interval_s`: the tap's
`lane_weight` samples. All go into the SampleQueue, which the publisher drains; nothing here
waits on the network.
"""

import asyncio
import logging
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.recognizers.base import Clock
from edge_agent.settings import TelemetrySettings
from edge_agent.sources.base import ReportsHealth, Source, SourceHealth
from edge_agent.taps import Tap, flag
from edge_agent.telemetry_queue import SampleQueue
from stockwire.status import DeviceState
from stockwire.telemetry import Sample

log = logging.getLogger(__name__)

STATM = Path("/proc/self/statm")


def rss_bytes() -> int:
    """Resident memory now (Linux); elsewhere the peak, which is what getrusage knows."""
    try:
        pages = int(STATM.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * resource.getpagesize()


@dataclass(frozen=True, slots=True)
class Probe:
    """The process's CPU seconds (all threads) and resident bytes; tests inject their own."""

    cpu_s: Callable[[], float] = time.process_time
    rss_bytes: Callable[[], int] = rss_bytes


class Collector:
    def __init__(
        self,
        edge: str,
        settings: TelemetrySettings,
        sources: Sequence[Source],
        tap: Tap,
        queue: SampleQueue,
        publisher: Publisher,
        outbox: Outbox,
        clock: Clock,
        probe: Probe | None = None,
    ) -> None:
        self._edge = edge
        self._settings = settings
        self._sources = sources
        self._tap = tap
        self._queue = queue
        self._publisher = publisher
        self._outbox = outbox
        self._clock = clock
        self._probe = probe or Probe()
        self._since = clock()
        self._cpu_s = self._probe.cpu_s()
        self._health: dict[str, SourceHealth] = {}
        for source in sources:  # a scanner's counts are sent from the start, zeros included
            if source.status().kind == "scanner":
                tap.scanner(source.device)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        every_s = self._settings.interval_s
        lanes_every_s = self._settings.lane_weight_interval_s
        next_all = loop.time() + every_s
        next_lanes = loop.time() + lanes_every_s
        while True:
            await asyncio.sleep(max(0.0, min(next_all, next_lanes) - loop.time()))
            now_s = loop.time()
            lanes, everything = now_s >= next_lanes, now_s >= next_all
            if lanes:
                next_lanes = max(next_lanes + lanes_every_s, now_s)
            if everything:
                next_all = max(next_all + every_s, now_s)
            try:
                self._queue.put(await self.collect(lanes=lanes, everything=everything))
            except Exception:  # telemetry must never stop the agent
                log.exception("telemetry: collecting samples failed (skipped this time)")

    async def collect(self, *, lanes: bool, everything: bool) -> list[Sample]:
        samples = self._tap.lane_samples(self._clock()) if lanes else []
        if everything:
            samples += await self.interval_samples()
        return samples

    async def interval_samples(self) -> list[Sample]:
        now = self._clock()
        stats = self._tap.interval_samples(now)
        agent = await self._agent(now)
        return [agent, *self._devices(now, stats.readings), *stats.samples]

    async def _agent(self, now: datetime) -> Sample:
        wall_s = (now - self._since).total_seconds()
        cpu_s = self._probe.cpu_s()
        cpu_percent = (cpu_s - self._cpu_s) / wall_s * 100 if wall_s > 0 else 0.0
        self._since, self._cpu_s = now, cpu_s
        oldest = await self._outbox.oldest_created_at()
        stats = self._publisher.stats
        fields = {
            "cpu_percent": max(0.0, cpu_percent),
            "rss_bytes": float(self._probe.rss_bytes()),
            "outbox_rows": float(self._outbox.count()),
            "outbox_oldest_age_s": 0.0
            if oldest is None
            else max(0.0, (now - oldest).total_seconds()),
            "connected": flag(self._publisher.connected),
            "reconnects_total": float(max(0, stats.connects - 1)),
            "txns_sent_total": float(stats.txns_sent),
            "telemetry_thinned_total": float(self._queue.thinned + self._tap.dropped),
        }
        latencies = self._publisher.latencies.drain()
        if latencies.count:
            fields["publish_latency_ms_mean"] = latencies.sum_ms / latencies.count
            fields["publish_latency_ms_max"] = latencies.max_ms
        return Sample(measurement="agent", device=self._edge, at=now, fields=fields)

    def _devices(self, now: datetime, readings: dict[str, int]) -> list[Sample]:
        samples = []
        for source in self._sources:
            status = source.status()
            fields = {
                "up": flag(status.state in (DeviceState.UP, DeviceState.DEGRADED)),
                "degraded": flag(status.state is DeviceState.DEGRADED),
                "readings": float(readings.get(source.device, 0)),
            }
            if isinstance(source, ReportsHealth):
                fields.update(self._health_fields(source.device, source.health()))
            samples.append(
                Sample(
                    measurement="device_health",
                    device=source.device,
                    at=now,
                    fields=fields,
                    tags={"kind": status.kind},
                )
            )
        return samples

    def _health_fields(self, device: str, health: SourceHealth) -> dict[str, float]:
        before = self._health.get(device, SourceHealth(0))
        self._health[device] = health
        fields = {"errors_total": float(health.errors_total)}
        count = health.latencies - before.latencies
        if count > 0:
            fields["latency_ms"] = (health.latency_ms_sum - before.latency_ms_sum) / count
        return fields
