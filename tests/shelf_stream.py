"""A tiny synthetic weight stream for recognizer tests: one lane sampled at 10 Hz.

Each method appends the samples of one stretch: a quiet hold, a pick or put with its hand
contact, impact overshoot and damped ringing, a hand resting on the shelf, a knock, a silence
(a device offline). Noise is white (seeded); drift is a constant rate over the whole stream.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from edge_agent.readings import WeightSample

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
DT_S = 0.1


@dataclass(slots=True)
class Stream:
    lane: str = "L1"
    grams: float = 0.0  # the true load now
    noise_g: float = 0.5
    drift_g_per_s: float = 0.0
    stable_bit: bool = False  # samples carry a STABLE bit (true when flat)
    device: str = "shelf-1"
    seed: int = 1
    t_s: float = 0.0
    samples: list[WeightSample] = field(default_factory=list)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def at(self, t_s: float) -> datetime:
        return T0 + timedelta(seconds=t_s)

    def _emit(self, extra_g: float, moving: bool) -> None:
        grams = self.grams + extra_g + self.drift_g_per_s * self.t_s
        grams += self._rng.gauss(0.0, self.noise_g)
        stable = (not moving) if self.stable_bit else None
        self.samples.append(WeightSample(self.device, self.lane, grams, self.at(self.t_s), stable))
        self.t_s = round(self.t_s + DT_S, 6)

    def hold(self, seconds: float, stable: bool | None = None) -> "Stream":
        for _ in range(round(seconds / DT_S)):
            self._emit(0.0, moving=False if stable is None else not stable)
        return self

    def change(self, delta_g: float, contact_g: float = 300.0, settle_s: float = 1.5) -> "Stream":
        """A hand touches (contact_g for 0.5 s), the load steps by delta_g, rings out."""
        for _ in range(5):
            self._emit(contact_g * self._rng.uniform(0.6, 1.0), moving=True)
        self.grams += delta_g
        return self._ring(0.3 * delta_g + 50.0, 5.0, settle_s)

    def _ring(self, amplitude_g: float, hz: float, settle_s: float) -> "Stream":
        steps = round(settle_s / DT_S)
        for i in range(steps):
            t = i * DT_S
            decay = math.exp(-5.0 * t / settle_s)
            self._emit(amplitude_g * decay * math.cos(2 * math.pi * hz * t + 0.3), moving=True)
        return self

    def rest(self, extra_g: float, seconds: float, tremor_g: float = 15.0) -> "Stream":
        """A hand resting on the shelf: extra load with a 2 Hz tremor, then lifted."""
        for i in range(round(seconds / DT_S)):
            tremor = tremor_g * math.sin(2 * math.pi * 2.0 * i * DT_S)
            self._emit(extra_g + tremor, moving=True)
        return self

    def knock(self, amplitude_g: float = 400.0) -> "Stream":
        return self._ring(amplitude_g, 6.0, 1.0)

    def silence(self, seconds: float) -> "Stream":
        self.t_s = round(self.t_s + seconds, 6)
        return self
