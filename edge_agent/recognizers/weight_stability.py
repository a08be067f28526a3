"""When a lane's weight is stable, and what it is then: a window over its latest samples.

Two ways to judge: our own band (max - min of the last `stable_window_s` of samples within
`stable_band_g` x sqrt(cells), plus `stable_band_per_kg_g` per kg on the lane: a plate of n
cells sums n cells' noise), or the transmitters' STABLE bit (every sample of the last
`stable_bit_hold_s` says stable) where the samples carry one and the profile trusts it; the
level is then the mean of the samples stable in a row, up to `stable_window_s` of them. Either
way the samples must span the window's time, so a gap in them (a device offline) never makes
two stretches one stable level.
"""

import itertools
import math
from collections import deque
from dataclasses import dataclass

from device_profiles.shelf import ShelfProfile

# The samples of a window must span it less this many poll intervals: polls are never exactly
# poll_interval_ms apart, so the sample one window back is as often just outside it as inside.
SPAN_SLACK_POLLS = 1.5


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    grams: float
    stable: bool | None  # the transmitters' STABLE bit, None when they have none

    def dump(self) -> list[float | int | None]:
        return [self.t_s, self.grams, None if self.stable is None else int(self.stable)]

    @classmethod
    def load(cls, row: list[float | int | None]) -> "Sample":
        t_s, grams, stable = row
        if not isinstance(t_s, int | float) or not isinstance(grams, int | float):
            raise TypeError(f"sample {row!r}")
        return cls(float(t_s), float(grams), None if stable is None else bool(stable))


@dataclass(frozen=True, slots=True)
class Level:
    """A stable stretch: its mean weight, when it began, and how many samples it holds."""

    grams: float
    since_s: float
    samples: int


class Window:
    """The latest samples of one lane, at most `window_samples_max` of them."""

    def __init__(self, shelf: ShelfProfile, cells: int = 1) -> None:
        self._shelf = shelf
        self._poll_s = shelf.poll_interval_ms / 1000.0
        self._band_g = shelf.stable_band_g * math.sqrt(cells)
        self.noise_ratio = 1.0  # the lane's noise over the profile's: the band grows with it
        self._keep_s = max(shelf.stable_window_s, shelf.stable_bit_hold_s)
        self.samples: deque[Sample] = deque(maxlen=shelf.window_samples_max)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while self.samples and self.samples[0].t_s < sample.t_s - self._keep_s - 1e-9:
            self.samples.popleft()

    def level(self) -> Level | None:
        """The stable level now, or None while the lane moves (or the window is short)."""
        if not self.samples:
            return None
        last = self.samples[-1]
        if last.stable is not None and self._shelf.use_stable_bit:
            return self._by_bit(last.t_s)
        return self._by_band(last.t_s)

    def spread_g(self) -> float:
        """max - min over the band window (0 when it holds one sample)."""
        recent = self._recent(self.samples[-1].t_s, self._shelf.stable_window_s)
        grams = [s.grams for s in recent]
        return max(grams) - min(grams) if grams else 0.0

    def band_g(self, load_g: float) -> float:
        return (
            self._band_g * self.noise_ratio
            + self._shelf.stable_band_per_kg_g * abs(load_g) / 1000.0
        )

    def _by_band(self, now_s: float) -> Level | None:
        recent = self._recent(now_s, self._shelf.stable_window_s)
        if not _spans(recent, self._shelf.stable_window_s, self._poll_s):
            return None
        grams = [s.grams for s in recent]
        mean = sum(grams) / len(grams)
        if max(grams) - min(grams) > self.band_g(mean):
            return None
        return Level(mean, recent[0].t_s, len(recent))

    def _by_bit(self, now_s: float) -> Level | None:
        recent = self._recent(now_s, self._shelf.stable_bit_hold_s)
        if not _spans(recent, self._shelf.stable_bit_hold_s, self._poll_s):
            return None
        if not all(s.stable for s in recent):
            return None
        run = self._recent(now_s, max(self._shelf.stable_window_s, self._shelf.stable_bit_hold_s))
        hole_s = self._shelf.stable_bit_hold_s / 2
        start = len(run) - 1
        while start > 0 and run[start - 1].stable and run[start].t_s - run[start - 1].t_s <= hole_s:
            start -= 1
        run = run[start:]
        grams = [s.grams for s in run]
        return Level(sum(grams) / len(grams), run[0].t_s, len(run))

    def _recent(self, now_s: float, span_s: float) -> list[Sample]:
        start = now_s - span_s - 1e-9
        return [s for s in self.samples if s.t_s >= start]


def _spans(recent: list[Sample], span_s: float, poll_s: float) -> bool:
    """The samples cover the span with no hole wider than half of it."""
    covered_s = max(span_s - SPAN_SLACK_POLLS * poll_s, span_s / 2)
    if len(recent) < 2 or recent[-1].t_s - recent[0].t_s < covered_s:
        return False
    return all(b.t_s - a.t_s <= span_s / 2 for a, b in itertools.pairwise(recent))
