"""Many random shelf events with their ground truth, for the weight recognizer's accuracy bench.

    run = random_shelf_events(10_000, seed=7, noise_scale=1.0)
    world = run.world()                       # a fresh ShelfWorld of the run (deterministic)
    for lane in run.lanes:
        samples = world.lane_samples(lane.id, [i / 10 for i in range(int(run.duration_s * 10))])
    run.events                                # what really happened, time-ordered (ShelfEvent)
    best_count_p(event, run.noise)            # the best any counter could do on it

Lanes (8 by default, 4 per device) each hold one item whose nominal weight is log-uniform in
5 g .. 5 kg with a piece CV of 0.5..2 %. Events on a lane are a few seconds apart (after the
previous one has settled, or the hand has lifted); lanes run side by side. Kinds: pick (1),
multi-pick (2..5 at once), put (1..5), foreign (a piece of another item, whose weight is no whole
number of the lane's units: k + 0.3..0.7 units), hand-rest (200..3000 g for 1..10 s), knock.
"""

import math
import random
from dataclasses import dataclass
from typing import Literal

from simulators.shelf.lanes import (
    CellSpec,
    Change,
    ChangeTruth,
    Foreign,
    HandRest,
    Knock,
    LaneSpec,
    Pieces,
)
from simulators.shelf.noise import ShelfNoise
from simulators.shelf.physics import seeded
from simulators.shelf.world import UPDATE_HZ, ShelfWorld

EventKind = Literal["pick", "multi-pick", "put", "foreign", "hand-rest", "knock"]
CHANNELS_PER_UNIT = 4
SETTLE_MAX_S = 2.5  # a change rings out in <= 2 s, then the motion window (0.5 s)
BASELINE_SAMPLES = 5  # a counter's baseline: the mean of 0.5 s of 10 Hz samples


@dataclass(frozen=True, slots=True)
class EventMix:
    """Relative frequencies of the event kinds (need not sum to 1)."""

    pick: float = 0.45
    multi_pick: float = 0.12
    put: float = 0.25
    foreign: float = 0.04
    hand_rest: float = 0.08
    knock: float = 0.06


@dataclass(frozen=True, slots=True)
class ShelfEvent:
    index: int  # in RandomShelfRun.changes
    at_s: float
    lane: str
    kind: EventKind
    pieces: int  # the true change in pieces of the lane's item (0: foreign, hand-rest, knock)
    grams: float  # the true change of the load
    unit_weight_g: float  # the lane's nominal
    piece_cv: float  # the lane item's CV as the world draws it (times the noise scale)
    cells: int  # load cells under the lane (their noises add)
    step_s: float
    settled_s: float


@dataclass(frozen=True, slots=True)
class RandomShelfRun:
    lanes: tuple[LaneSpec, ...]
    changes: tuple[Change, ...]
    events: tuple[ShelfEvent, ...]
    noise: ShelfNoise
    seed: int
    duration_s: float  # the last event has settled (a hand lifted) by then

    def world(self, update_hz: float = UPDATE_HZ) -> ShelfWorld:
        return ShelfWorld(self.lanes, self.changes, self.seed, self.noise, update_hz)


def best_count_p(
    event: ShelfEvent, noise: ShelfNoise, baseline_samples: int = BASELINE_SAMPLES
) -> float | None:
    """P(round((sum of the event's piece weights + the noise of the two baselines) / unit) ==
    true n): scale-counting statistics in the normal approximation. The n pieces' sum has
    variance n (cv u)^2; each baseline is the mean of `baseline_samples` samples of each cell's
    white noise. Drift and creep between the baselines are left out (a counter tracks them).
    None for a foreign item (no count of the lane's item is right for it)."""
    if event.kind == "foreign":
        return None
    u = event.unit_weight_g
    sigma = noise.sensor_sigma_g * noise.scale
    var = abs(event.pieces) * (event.piece_cv * u) ** 2
    var += 2 * event.cells * sigma**2 / baseline_samples
    if var == 0:
        return 1.0
    return math.erf((u / 2) / math.sqrt(2 * var))


@dataclass(slots=True)
class _Lane:
    spec: LaneSpec
    cap: int  # at most this many pieces fit
    pieces: int
    free_s: float = 0.0  # the last event on it has settled


def random_shelf_events(
    n_events: int,
    seed: int = 0,
    noise_scale: float = 1.0,
    *,
    lanes: int = 8,
    noise: ShelfNoise | None = None,
    mix: EventMix = EventMix(),
    gap_s: tuple[float, float] = (2.0, 6.0),
) -> RandomShelfRun:
    """`n_events` events on `lanes` lanes; `noise` (default: ShelfNoise(scale=noise_scale))."""
    noise = noise or ShelfNoise(scale=noise_scale)
    rng = seeded(f"shelf-events:{seed}")
    state = [_new_lane(rng, n) for n in range(lanes)]
    drawn: list[tuple[Change, EventKind, float]] = []  # change, kind, when the lane is free
    for _ in range(n_events):
        lane = rng.choice(state)
        at = round(lane.free_s + rng.uniform(*gap_s), 3)
        change, kind, busy_s = _event(rng, lane, at, mix)
        lane.free_s = at + busy_s
        drawn.append((change, kind, lane.free_s))
    drawn.sort(key=lambda d: d[0].at_s)
    specs = tuple(lane.spec for lane in state)
    changes = tuple(d[0] for d in drawn)
    world = ShelfWorld(specs, changes, seed, noise)
    by_id = {s.id: s for s in specs}
    events = tuple(
        _truth(t, kind, by_id[t.lane], noise)
        for t, (_, kind, _) in zip(world.truth(), drawn, strict=True)
    )
    duration = max((d[2] for d in drawn), default=0.0) + 2.0
    return RandomShelfRun(specs, changes, events, noise, seed, duration)


def _new_lane(rng: random.Random, n: int) -> _Lane:
    unit_g = round(math.exp(rng.uniform(math.log(5.0), math.log(5000.0))), 2)
    cap = max(8, min(60, round(40_000 / unit_g)))
    cell = CellSpec(1 + n // CHANNELS_PER_UNIT, 1 + n % CHANNELS_PER_UNIT)
    pieces = rng.randint(cap // 3, cap)
    cv = rng.uniform(0.005, 0.02)
    spec = LaneSpec(f"L{n + 1}", f"ITEM-{n + 1}", unit_g, (cell,), f"S-{n + 1:02d}", cv, pieces)
    return _Lane(spec, cap, pieces)


def _kind(rng: random.Random, lane: _Lane, mix: EventMix) -> EventKind:
    weights: dict[EventKind, float] = {
        "pick": mix.pick if lane.pieces >= 1 else 0.0,
        "multi-pick": mix.multi_pick if lane.pieces >= 2 else 0.0,
        "put": mix.put if lane.pieces < lane.cap else 0.0,
        "foreign": mix.foreign,
        "hand-rest": mix.hand_rest,
        "knock": mix.knock,
    }
    kinds = list(weights)
    return rng.choices(kinds, [weights[k] for k in kinds])[0]


def _event(
    rng: random.Random, lane: _Lane, at: float, mix: EventMix
) -> tuple[Change, EventKind, float]:
    """A random event on `lane` at `at`, and how long the lane is busy with it."""
    kind, lane_id, u = _kind(rng, lane, mix), lane.spec.id, lane.spec.unit_weight_g
    busy_s = SETTLE_MAX_S
    change: Change
    if kind == "pick":
        change = Pieces(at, lane_id, -1)
    elif kind == "multi-pick":
        change = Pieces(at, lane_id, -rng.randint(2, min(5, lane.pieces)))
    elif kind == "put":
        change = Pieces(at, lane_id, rng.randint(1, min(5, lane.cap - lane.pieces)))
    elif kind == "foreign":
        grams = (rng.randint(0, 2) + rng.uniform(0.3, 0.7)) * u
        change = Foreign(at, lane_id, 1, round(grams, 2), piece_cv=0.0, sku="FOREIGN")
    elif kind == "hand-rest":
        for_s = round(rng.uniform(1.0, 10.0), 2)
        change = HandRest(at, lane_id, round(rng.uniform(200.0, 3000.0)), for_s)
        busy_s += for_s
    else:
        change = Knock(at, lane_id)
    if isinstance(change, Pieces):
        lane.pieces += change.delta
    return change, kind, busy_s


def _truth(t: ChangeTruth, kind: EventKind, spec: LaneSpec, noise: ShelfNoise) -> ShelfEvent:
    cv = (spec.piece_cv if noise.piece_cv is None else noise.piece_cv) * noise.scale
    return ShelfEvent(
        t.index,
        t.at_s,
        t.lane,
        kind,
        t.pieces,
        t.grams,
        spec.unit_weight_g,
        cv,
        len(spec.cells),
        t.step_s,
        t.settled_s,
    )
