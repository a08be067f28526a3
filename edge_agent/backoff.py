"""Jittered exponential backoff for reconnect loops."""

import random


class Backoff:
    """Full jitter: each delay is uniform in [min_s, cap], the cap doubling up to max_s."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        assert 0 < min_s <= max_s
        self.min_s = min_s
        self.max_s = max_s
        self._cap = min_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto

    def next_s(self) -> float:
        delay = self._rng.uniform(self.min_s, self._cap)
        self._cap = min(self.max_s, self._cap * 2)
        return delay

    def reset(self) -> None:
        self._cap = self.min_s
