"""Telemetry samples waiting for the publisher: bounded, thinned (never blocking) when full.

Thinning policy: when a put brings the queue past `samples_max`, the oldest half is thinned
series by series (a series = measurement, device and tags): every other sample of each series
there is dropped, starting with its second, so every series keeps half its resolution and its
first sample rather than some series vanishing. That repeats until the queue fits; when a pass
frees nothing (every series has one sample there), the oldest samples go. Order is kept;
every drop is counted in `thinned` (the agent's telemetry_thinned_total).
"""

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Sequence

from stockwire.telemetry import Sample, TelemetryBatch

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


def series(sample: Sample) -> SeriesKey:
    return sample.measurement, sample.device, tuple(sorted(sample.tags.items()))


class SampleQueue:
    def __init__(self, samples_max: int) -> None:
        assert samples_max >= 1
        self.samples_max = samples_max
        self._samples: deque[Sample] = deque()
        self.thinned = 0
        self.ready = asyncio.Event()  # set by put; the reader clears it
        self._thinning = False  # since the queue was last emptied (for the log)

    def __len__(self) -> int:
        return len(self._samples)

    def put(self, samples: Iterable[Sample]) -> None:
        self._samples.extend(samples)
        if len(self._samples) > self.samples_max and not self._thinning:
            self._thinning = True
            log.warning(
                "telemetry queue full (%d samples): thinning the oldest until it drains",
                self.samples_max,
            )
        while len(self._samples) > self.samples_max:
            self._thin()
        if self._samples:
            self.ready.set()

    def take(self, limit: int) -> list[Sample]:
        """Up to `limit` of the oldest samples, removed from the queue."""
        n = min(limit, len(self._samples))
        taken = [self._samples.popleft() for _ in range(n)]
        if not self._samples and self._thinning:
            self._thinning = False
            log.info("telemetry queue drained (%d samples thinned so far)", self.thinned)
        return taken

    def _thin(self) -> None:
        oldest = len(self._samples) // 2
        seen: dict[SeriesKey, int] = {}
        kept: list[Sample] = []
        for _ in range(oldest):
            sample = self._samples.popleft()
            key = series(sample)
            nth = seen[key] = seen.get(key, 0) + 1
            if nth % 2:
                kept.append(sample)
        self._samples.extendleft(reversed(kept))
        dropped = oldest - len(kept)
        if dropped == 0:  # one sample per series there (or a tiny queue): the oldest go
            dropped = len(self._samples) - self.samples_max
            for _ in range(dropped):
                self._samples.popleft()
        self.thinned += dropped


def payloads(edge: str, samples: Sequence[Sample], bytes_max: int) -> list[bytes]:
    """`samples` as TelemetryBatch JSON payloads of at most `bytes_max` bytes each, in order
    (a batch over the limit is split in halves); a single sample over it is left out."""
    if not samples:
        return []
    payload = TelemetryBatch(edge=edge, samples=tuple(samples)).model_dump_json().encode()
    if len(payload) <= bytes_max:
        return [payload]
    if len(samples) == 1:
        return []
    half = len(samples) // 2
    return payloads(edge, samples[:half], bytes_max) + payloads(edge, samples[half:], bytes_max)
