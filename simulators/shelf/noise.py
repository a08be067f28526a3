"""How noisy a shelf is: the documented default (scale 1) and named noises to switch off.

Every magnitude (grams, fractions) is multiplied by `scale`; durations and frequencies are
not (a harder world has bigger disturbances, not slower ones). See simulators/shelf/PHYSICS.md.
"""

from dataclasses import dataclass, fields, replace
from typing import Literal

# The noises a scenario can name; any not named is off.
ShelfNoiseName = Literal["sensor", "piece-weights", "transients", "drift", "creep"]
ALL_NOISES: tuple[ShelfNoiseName, ...] = ("sensor", "piece-weights", "transients", "drift", "creep")

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class ShelfNoise:
    scale: float = 1.0
    # -- the transmitter --------------------------------------------------------------------
    sensor_sigma_g: float = 0.5  # white noise per sample and cell, after the transmitter's filter
    piece_cv: float | None = None  # None: each item's own CV; else this CV for every item
    # -- a pick or put: the hand's contact, the impact, the ringing ---------------------------
    contact_g: Range = (100.0, 600.0)  # extra force of the hand on the lane
    contact_s: Range = (0.2, 1.0)  # how long the hand touches
    overshoot: Range = (0.1, 0.5)  # impact overshoot as a fraction of the change
    ring_hz: Range = (3.0, 8.0)  # the damped oscillation of lane and cell
    settle_s: Range = (0.3, 2.0)  # from the start of the event to within noise
    knock_g: Range = (100.0, 1000.0)  # peak of a knock's ringing (no load change)
    # -- a hand resting on the shelf ----------------------------------------------------------
    tremor_g: Range = (10.0, 30.0)
    tremor_hz: Range = (1.0, 5.0)
    # -- slow: temperature drift per cell, creep per lane --------------------------------------
    drift_g: float = 3.0  # peak of the drift (two slow sines; rate <= 0.02 g/s at scale 1)
    creep_fraction: float = 0.0003  # the reading creeps to +0.03 % of the load ...
    creep_tau_s: float = 300.0  # ... with this time constant

    def __post_init__(self) -> None:
        if self.scale < 0:
            raise ValueError(f"ShelfNoise.scale must be >= 0, got {self.scale}")
        for f in fields(self):
            value = getattr(self, f.name)
            lows = value if isinstance(value, tuple) else (value,)
            if any(v is not None and v < 0 for v in lows):
                raise ValueError(f"ShelfNoise.{f.name} must be >= 0, got {value}")
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"ShelfNoise.{f.name}: low > high in {value}")
        if self.creep_tau_s <= 0:
            raise ValueError("ShelfNoise.creep_tau_s must be > 0")

    def only(self, names: tuple[ShelfNoiseName, ...] | set[ShelfNoiseName]) -> "ShelfNoise":
        """These noises as they are; every other one off."""
        on = set(names)
        return replace(
            self,
            sensor_sigma_g=self.sensor_sigma_g if "sensor" in on else 0.0,
            piece_cv=self.piece_cv if "piece-weights" in on else 0.0,
            contact_g=self.contact_g if "transients" in on else (0.0, 0.0),
            overshoot=self.overshoot if "transients" in on else (0.0, 0.0),
            knock_g=self.knock_g if "transients" in on else (0.0, 0.0),
            tremor_g=self.tremor_g if "transients" in on else (0.0, 0.0),
            drift_g=self.drift_g if "drift" in on else 0.0,
            creep_fraction=self.creep_fraction if "creep" in on else 0.0,
        )

    @classmethod
    def clean(cls) -> "ShelfNoise":
        """No noise at all: pieces weigh their nominal weight, changes are clean steps."""
        return cls(scale=0.0, piece_cv=0.0)

    def motion_band_g(self) -> float:
        """The transmitter's motion detector: STABLE when the last `MOTION_WINDOW_S` of samples
        spread less than this: 6 sigma of the sensor noise (3 g at scale 1, like 2-3 divisions
        of a real transmitter), so a still lane flickers to unstable < 0.2 % of the time. A
        clean world still needs a band above float rounding."""
        return max(6.0 * self.sensor_sigma_g * self.scale, 0.01)
