"""The telemetry sink: a bounded buffer, batches every flush interval, retries with backoff.

Ingest hands points to `offer` and never waits: it appends and returns (O(points)). `run`
writes them in batches of `batch_points_max` every `flush_interval_s` (at once when a batch is
full), one write at a time, each bounded by `timeout_s` in the writer. A failed write keeps
its points and is retried after a jittered exponential backoff (retry_min_s..retry_max_s).

When the server is down or slow the buffer fills. Past `buffer_points_max` (points waiting plus
the batch being written) it is thinned: the oldest edge telemetry goes first, then the oldest of
the aggregator's own points. Everything dropped is counted (`stats`) and logged at most once per
LOG_INTERVAL_S. A batch the server refuses outright (HTTP 4xx other than 408/429) is dropped
and counted as rejected: sending it again would not change the answer.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aggregator.settings import TelemetrySinkSettings
from aggregator.telemetry.points import Point
from stockwire.measurements import Origin

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0  # at most one warning per kind of trouble per this interval
CLOSE_FLUSH_TIMEOUT_S = 10.0


class SinkWriteError(Exception):
    """A write that failed; `retry` False when the server refused it for good (4xx)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class PointWriter(Protocol):
    def write(self, points: Sequence[Point]) -> None: ...  # blocking; SinkWriteError

    def close(self) -> None: ...


@dataclass(slots=True)
class SinkStats:
    offered: int = 0
    written: int = 0
    thinned_edge: int = 0  # dropped because the buffer was full
    thinned_aggregator: int = 0
    rejected: int = 0  # in batches the server refused (4xx)
    write_failures: int = 0  # failed writes (each retried)
    writes: int = 0


def retry_delay_s(failures: int, min_s: float, max_s: float, jitter: float) -> float:
    """Exponential from min_s, capped at max_s, then jittered into [half, full]."""
    base_s = min(max_s, min_s * 2.0 ** min(failures - 1, 32))
    return base_s * (0.5 + jitter / 2)


class TelemetrySink:
    def __init__(
        self,
        settings: TelemetrySinkSettings,
        writer: PointWriter,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.clock = clock
        self.jitter = jitter
        self.stats = SinkStats()
        self._edge: deque[Point] = deque()
        self._aggregator: deque[Point] = deque()
        self._writing = 0  # points of the batch being written
        self._full = asyncio.Event()
        self._failures = 0
        self._warned: dict[str, float] = {}  # kind of trouble -> when last logged
        self._thinned_since_warning = 0

    @property
    def buffered(self) -> int:
        return len(self._edge) + len(self._aggregator)

    def offer(self, points: Iterable[Point]) -> None:
        """Take points to write; never blocks, never raises for a full buffer (thins it)."""
        edge, aggregator = self._edge, self._aggregator
        offered = 0
        for one in points:
            (edge if one.origin is Origin.EDGE else aggregator).append(one)
            offered += 1
        self.stats.offered += offered
        self._thin()
        if self.buffered >= self.settings.batch_points_max:
            self._full.set()

    def _thin(self) -> None:
        over = self.buffered + self._writing - self.settings.buffer_points_max
        if over <= 0:
            return
        for queue, origin in ((self._edge, Origin.EDGE), (self._aggregator, Origin.AGGREGATOR)):
            drop = min(over, len(queue))
            for _ in range(drop):
                queue.popleft()
            if origin is Origin.EDGE:
                self.stats.thinned_edge += drop
            else:
                self.stats.thinned_aggregator += drop
            over -= drop
            self._thinned_since_warning += drop
        if self._due("thinned"):
            log.warning(
                "telemetry: buffer full (%d points): %d dropped since the last warning "
                "(%d edge, %d aggregator since start)",
                self.settings.buffer_points_max,
                self._thinned_since_warning,
                self.stats.thinned_edge,
                self.stats.thinned_aggregator,
            )
            self._thinned_since_warning = 0

    def _due(self, kind: str) -> bool:
        now = self.clock()
        last = self._warned.get(kind)
        if last is not None and now - last < LOG_INTERVAL_S:
            return False
        self._warned[kind] = now
        return True

    async def run(self) -> None:
        """Forever: wait for a full batch or the flush interval, write all there is; after a
        failed write, back off before the next try."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.settings.flush_interval_s)
            self._full.clear()
            if not await self.flush():
                s = self.settings
                await asyncio.sleep(
                    retry_delay_s(self._failures, s.retry_min_s, s.retry_max_s, self.jitter())
                )

    async def flush(self) -> bool:
        """Write everything buffered, batch by batch; False at the first failed write (its
        points stay buffered)."""
        while self.buffered:
            if not await self._write_one():
                return False
        return True

    async def _write_one(self) -> bool:
        batch = self._take(self.settings.batch_points_max)
        self._writing = len(batch)
        try:
            await asyncio.to_thread(self.writer.write, batch)
        except SinkWriteError as e:
            self._writing = 0
            return self._failed(batch, e)
        except Exception:
            # A bug in the writer: drop this batch (counted) rather than the sink's task.
            self._writing = 0
            self.stats.rejected += len(batch)
            log.exception("telemetry: writing %d point(s) failed unexpectedly", len(batch))
            return True
        except BaseException:
            self._writing = 0
            self._put_back(batch)  # cancelled mid-write: close() may still flush them
            raise
        self._writing = 0
        self.stats.writes += 1
        self.stats.written += len(batch)
        if self._failures:
            log.info("telemetry: writing again after %d failed write(s)", self._failures)
        self._failures = 0
        return True

    def _failed(self, batch: list[Point], error: SinkWriteError) -> bool:
        if not error.retry:
            self.stats.rejected += len(batch)
            if self._due("rejected"):
                log.warning("telemetry: the server refused %d point(s): %s", len(batch), error)
            return True  # dropped; go on with the rest
        self._failures += 1
        self.stats.write_failures += 1
        self._put_back(batch)
        if self._due("write"):
            log.warning(
                "telemetry: write to %s failed (%s); %d point(s) wait, retrying with backoff",
                self.settings.url,
                error,
                self.buffered,
            )
        return False

    def _take(self, count: int) -> list[Point]:
        """The oldest aggregator points first (they are thinned last), then edge ones."""
        batch: list[Point] = []
        for queue in (self._aggregator, self._edge):
            while queue and len(batch) < count:
                batch.append(queue.popleft())
        return batch

    def _put_back(self, batch: list[Point]) -> None:
        edge = [p for p in batch if p.origin is Origin.EDGE]
        aggregator = [p for p in batch if p.origin is not Origin.EDGE]
        self._edge.extendleft(reversed(edge))
        self._aggregator.extendleft(reversed(aggregator))
        self._thin()

    async def close(self) -> None:
        """One last bounded try to write what is buffered, then release the client."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), CLOSE_FLUSH_TIMEOUT_S)
        if self.buffered:
            log.warning("telemetry: %d point(s) not written at stop", self.buffered)
        await asyncio.to_thread(self.writer.close)
