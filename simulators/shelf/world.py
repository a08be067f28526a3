"""A shelf's world: lanes of pieces on load cells, as their weighing transmitters see them.

Each transmitter channel (a load cell) updates `update_hz` times a second on a fixed grid:
its share of the lane's load signal (physics.py) + its own temperature drift + white noise.
Its motion detector (the STABLE bit) is set when its last `MOTION_WINDOW_S` of samples
spread less than the noise's motion band. A reading at `t` is the channel's latest sample.
Every grid sample is computed in order, so a world is deterministic given its seed whatever
the query times; a query costs the grid samples since the previous one, never the history.

Sensor noise and drift are per cell: a lane on a plate of n cells has sqrt(n) x the noise
of one cell and n independent drifts.
"""

import math
import random
from collections import deque
from collections.abc import Iterable

from simulators.shelf.cells import CellReading
from simulators.shelf.lanes import Change, ChangeTruth, LaneSpec
from simulators.shelf.noise import ShelfNoise
from simulators.shelf.physics import LaneCursor, LanePhysics, seeded

UPDATE_HZ = 20.0  # a transmitter's output rate (after its filter)
MOTION_WINDOW_S = 0.5
DRIFT_SLOW_S = (3600.0, 7200.0)  # period of the slow part of the drift (2/3 of its peak)
DRIFT_FAST_S = (600.0, 1200.0)  # and of the faster part (1/3): <= 0.014 g/s at scale 1


# (t_s, grams: the lane's cells summed, stable: every cell of the lane STABLE)
LaneSample = tuple[float, float, bool]


class _Cell:
    __slots__ = ("drift", "grams", "share", "window")

    def __init__(self, share: float, rng: random.Random, noise: ShelfNoise, window: int) -> None:
        self.share = share
        peak = noise.drift_g * noise.scale
        self.drift = (
            rng.uniform(-1, 1) * peak * 2 / 3,
            2 * math.pi / rng.uniform(*DRIFT_SLOW_S),
            rng.uniform(0, 2 * math.pi),
            rng.uniform(-1, 1) * peak / 3,
            2 * math.pi / rng.uniform(*DRIFT_FAST_S),
            rng.uniform(0, 2 * math.pi),
        )
        self.grams = 0.0
        self.window: deque[float] = deque(maxlen=window)

    def stable(self, band_g: float) -> bool:
        w = self.window
        return len(w) == w.maxlen and max(w) - min(w) < band_g


class _Lane:
    def __init__(self, physics: LanePhysics, seed: int, hz: float) -> None:
        noise = physics.noise
        spec = physics.spec
        self.physics = physics
        self.cursor = LaneCursor(physics)
        window = max(1, round(MOTION_WINDOW_S * hz))
        self.cells = [
            _Cell(c.share, seeded(f"drift:{seed}:{spec.id}:{c.unit}:{c.channel}"), noise, window)
            for c in spec.cells
        ]
        self.sigma_g = noise.sensor_sigma_g * noise.scale
        self.band_g = noise.motion_band_g()
        self.rng = seeded(f"sensor:{seed}:{spec.id}")
        self.hz = hz
        self.k = -1  # the last grid sample computed

    def advance(self, k: int) -> None:
        """Compute the grid samples up to `k` (the hot loop: locals, few calls)."""
        gauss, sigma, at, hz, sin = self.rng.gauss, self.sigma_g, self.cursor.at, self.hz, math.sin
        cells = self.cells
        for j in range(self.k + 1, k + 1):
            t = j / hz
            load = at(t)
            for cell in cells:
                a1, w1, p1, a2, w2, p2 = cell.drift
                v = cell.share * load + a1 * sin(w1 * t + p1) + a2 * sin(w2 * t + p2)
                if sigma:
                    v += gauss(0.0, sigma)
                cell.grams = v
                cell.window.append(v)
        self.k = max(self.k, k)

    def sample(self, t: float) -> LaneSample:
        cells, band = self.cells, self.band_g
        if len(cells) == 1:
            w = cells[0].window
            return t, cells[0].grams, len(w) == w.maxlen and max(w) - min(w) < band
        return t, sum(c.grams for c in cells), all(c.stable(band) for c in cells)


class ShelfWorld:
    """`simulators.shelf.cells.CellSource` for the Modbus server, and lane samples for benches.

    `changes` must be in time order and name known lanes; a change that takes more pieces
    than the lane holds is a ValueError naming it.
    """

    def __init__(
        self,
        lanes: Iterable[LaneSpec],
        changes: Iterable[Change],
        seed: int = 0,
        noise: ShelfNoise = ShelfNoise(),  # noqa: B008 (frozen)
        update_hz: float = UPDATE_HZ,
    ) -> None:
        specs = list(lanes)
        self.changes = tuple(changes)
        _check(specs, self.changes)
        self.noise = noise
        self.update_hz = update_hz
        self._lanes: dict[str, _Lane] = {}
        self._cells: dict[tuple[int, int], tuple[_Lane, _Cell]] = {}
        for spec in specs:
            mine = [(i, c) for i, c in enumerate(self.changes) if c.lane == spec.id]
            lane = _Lane(LanePhysics(spec, mine, seed, noise), seed, update_hz)
            self._lanes[spec.id] = lane
            for cell_spec, cell in zip(spec.cells, lane.cells, strict=True):
                self._cells[(cell_spec.unit, cell_spec.channel)] = (lane, cell)

    def cells(self) -> list[tuple[int, int]]:
        return sorted(self._cells)

    def reading(self, unit: int, channel: int, t_s: float) -> CellReading:
        found = self._cells.get((unit, channel))
        if found is None:
            raise LookupError(f"shelf world has no cell at unit {unit} channel {channel}")
        lane, cell = found
        lane.advance(self._grid(t_s))
        return CellReading(cell.grams, cell.stable(lane.band_g))

    def lane_samples(self, lane_id: str, times_s: Iterable[float]) -> list[LaneSample]:
        """The lane as its transmitters show it at each of `times_s` (non-decreasing): its
        cells summed, and stable when all of them are. Advances the lane like `reading`."""
        lane, hz = self._lane(lane_id), self.update_hz
        out = []
        for t in times_s:
            k = max(0, math.floor(t * hz + 1e-9))
            if k > lane.k:
                lane.advance(k)
            out.append(lane.sample(t))
        return out

    def truth(self, lane_id: str | None = None) -> list[ChangeTruth]:
        """What each change really did (in change-list order), optionally of one lane."""
        lanes = [self._lane(lane_id)] if lane_id else list(self._lanes.values())
        return sorted((t for lane in lanes for t in lane.physics.truth), key=lambda t: t.index)

    def lane_physics(self, lane_id: str) -> LanePhysics:
        return self._lane(lane_id).physics

    def _lane(self, lane_id: str) -> _Lane:
        lane = self._lanes.get(lane_id)
        if lane is None:
            raise LookupError(f"shelf world has no lane {lane_id!r}")
        return lane

    def _grid(self, t_s: float) -> int:
        return max(0, math.floor(t_s * self.update_hz + 1e-9))


def _check(specs: list[LaneSpec], changes: tuple[Change, ...]) -> None:
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a lane id is used twice in {ids}")
    cells = [(c.unit, c.channel) for s in specs for c in s.cells]
    if len(set(cells)) != len(cells):
        raise ValueError("a cell (unit, channel) is under two lanes")
    for n, change in enumerate(changes):
        if change.lane not in ids:
            raise ValueError(f"change {n}: unknown lane {change.lane!r}")
        if n and change.at_s < changes[n - 1].at_s:
            raise ValueError(f"change {n}: at {change.at_s} s is before the change before it")
