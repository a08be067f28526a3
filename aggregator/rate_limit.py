"""Per-edge token buckets on incoming messages, and a throttle for the alerts they cause.

A refused message is not posted and not stored: it is counted under its edge and acknowledged to
the broker. An edge's transactions lose nothing by it: the edge keeps them in its outbox and
publishes them again after its ack timeout. What a flood costs us is the topic parse, the
count and the PUBACK.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aggregator.settings import RateLimitSettings

OTHER_EDGES = "(other)"  # the shared key once edges_max buckets exist
EDGE_KEY_CHARS_MAX = 64


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class EdgeRateLimit:
    def __init__(
        self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = settings.messages_per_s
        self._burst = float(settings.burst_messages)
        self._edges_max = settings.edges_max
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.refused: Counter[str] = Counter()

    def allow(self, edge: str) -> bool:
        now = self._clock()
        key = self.key(edge, now)
        bucket = self._buckets.setdefault(key, _Bucket(self._burst, now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refused[key] += 1
        return False

    def key(self, edge: str, now: float | None = None) -> str:
        """The bucket an edge name counts under (bounded: names beyond edges_max share one)."""
        edge = edge[:EDGE_KEY_CHARS_MAX]
        if edge in self._buckets or len(self._buckets) < self._edges_max:
            return edge
        self._forget_full(self._clock() if now is None else now)
        return edge if len(self._buckets) < self._edges_max else OTHER_EDGES

    def _forget_full(self, now: float) -> None:
        """A bucket refilled to the burst is the same as no bucket: drop those."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.at) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]


class AlertThrottle:
    """At most one alert per (kind, edge) per interval; says how many were held back."""

    def __init__(
        self, interval_s: float, keys_max: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._keys_max = keys_max
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: Counter[tuple[str, str]] = Counter()

    def due(self, kind: str, edge: str) -> int | None:
        """None: hold this one back. Otherwise send it: the count held back since the last."""
        key = (kind, edge)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._held[key] += 1
            return None
        if len(self._last) >= self._keys_max:
            self._last.clear()  # worst case: a few alerts more than the interval allows
        self._last[key] = now
        return self._held.pop(key, 0)
