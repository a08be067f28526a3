"""Many random passes through one door, with distractors, for the recognizer's accuracy bench.

    run = random_passes(10_000, NoiseLevel().scaled(2.0), seed=7)
    run.sightings      # what the door's reader saw, time-sorted
    run.passes         # what really crossed (TruePass)
    run.distractors    # what must produce no pass at the door

Passes follow each other with a gap; per pass, distractors are drawn at the NoiseLevel's
rates. Neighbour traffic overlaps the passes in time (it is at another door); a staged pallet
stands beside the lane while later passes go by, then leaves the way it came or crosses.
"""

import gc
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from simulators.barcodes import check_digit
from simulators.portal.identity import TagMaker
from simulators.portal.layout import PortalLayout
from simulators.portal.motion import STAGE_X_M, Path, crossing, returning
from simulators.portal.noise import NoiseLevel
from simulators.portal.radio import DEFAULT_PROFILE, PROFILES, RadioModel
from simulators.portal.tags import place
from simulators.portal.truth import Direction, Distractor, ReturningKind, Side, TruePass
from simulators.portal.world import Portal, World
from simulators.sightings import Sighting

COMPANY_PREFIX = "4012345"
DEFAULT_GTINS = tuple(
    "0" + COMPANY_PREFIX + ref + check_digit("0" + COMPANY_PREFIX + ref)
    for ref in ("00011", "00028", "00035", "00042", "00059", "00066")
)
STAGED_Y_M = 1.1  # staged pallets stand beside the lane, not in it


@dataclass(frozen=True, slots=True)
class Traffic:
    """What moves, how fast, how often: not noise, but part of the world."""

    speed_m_per_s: tuple[float, float] = (1.0, 2.5)  # forklift speed, uniform
    units: tuple[int, int] = (4, 30)  # item tags per load, uniform (plus one pallet tag)
    gtins_per_load: tuple[int, int] = (1, 3)
    gap_s: tuple[float, float] = (2.0, 8.0)  # between one load leaving and the next entering
    lane_m: float = 0.3  # a load's centre wanders this much either side of the door's axis
    stand_s: tuple[float, float] = (15.0, 45.0)  # a staged pallet stands this long
    close_s: tuple[float, float] = (1.0, 3.0)  # a close second load enters this much later
    gtins: tuple[str, ...] = DEFAULT_GTINS


@dataclass(frozen=True, slots=True)
class RandomRun:
    door: str
    neighbour: str
    layout: PortalLayout
    radio: RadioModel
    noise: NoiseLevel
    sightings: tuple[Sighting, ...]  # the door's reader, time-sorted
    passes: tuple[TruePass, ...]  # in order of enter_s
    distractors: tuple[Distractor, ...]
    # The neighbour door's own reader (same layout and noise), when asked for; its true passes
    # are the distractors of kind "neighbour-traffic", and this door's passes are its strays.
    neighbour_sightings: tuple[Sighting, ...] = ()


def random_passes(
    count: int,
    noise: NoiseLevel = NoiseLevel(),  # noqa: B008 (frozen)
    seed: int = 0,
    *,
    door: str = "DOCK-1",
    neighbour: str = "DOCK-2",
    layout: PortalLayout = PortalLayout(),  # noqa: B008 (frozen)
    profile: str = DEFAULT_PROFILE,
    radio: RadioModel | None = None,
    traffic: Traffic = Traffic(),
    neighbour_reader: bool = False,
) -> RandomRun:
    """`count` true passes at `door` (ports per `layout`: 1,2 outside, 3,4 inside by default).

    `radio` overrides the reader `profile` (e.g. `replace(PROFILES[p], tag_reads_per_s_max=40)`
    for a busier reader). Sightings cost ~0.15 kB each (~500 per pass): for very long runs,
    generate in chunks with different seeds.
    """
    radio = radio or PROFILES[profile]
    portals = [Portal("portal", door, layout, radio, noise, neighbour)]
    if neighbour_reader:
        portals.append(Portal("neighbour", neighbour, layout, radio, noise, door))
    gen = _Generator(seed, portals, traffic)
    with _gc_paused():
        while len(gen.passes) < count:
            gen.episode(count)
        gen.finish()
        return _result(gen, neighbour_reader)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of small acyclic objects: the cyclic GC would only rescan them (~30 % of the
    time). Paused for this call only, and restored as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _result(gen: "_Generator", neighbour_reader: bool) -> RandomRun:
    p = gen.portals[0]
    assert p.neighbour is not None
    return RandomRun(
        p.door,
        p.neighbour,
        p.layout,
        p.radio,
        p.noise,
        gen.world.sightings("portal"),
        tuple(sorted(gen.passes, key=lambda x: x.enter_s)),
        tuple(gen.distractors),
        gen.world.sightings("neighbour") if neighbour_reader else (),
    )


@dataclass(slots=True)
class _Staged:
    load: int
    items: tuple[bytes, ...]
    pallet: bytes
    side: Side
    at_s: float
    ready_s: float


@dataclass(slots=True)
class _Generator:
    seed: int
    portals: list[Portal]
    traffic: Traffic
    rng: random.Random = field(init=False)
    world: World = field(init=False)
    tags: TagMaker = field(init=False)
    passes: list[TruePass] = field(default_factory=list)
    distractors: list[Distractor] = field(default_factory=list)
    staged: list[_Staged] = field(default_factory=list)
    cursor_s: float = 0.0
    loads: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"passes:{self.seed}")
        self.world = World(self.portals)
        self.tags = TagMaker(self.seed, COMPANY_PREFIX)

    @property
    def door(self) -> str:
        return self.portals[0].door

    @property
    def noise(self) -> NoiseLevel:
        return self.portals[0].noise

    def episode(self, count: int) -> None:
        """One true pass (or two close ones), with the distractors drawn for it."""
        n, rng = self.noise, self.rng
        self._leave_staged(cross_ok=len(self.passes) < count - 1)
        if len(self.passes) >= count:
            return
        if rng.random() < n.backout_per_pass:
            self._returning("backout")
        if rng.random() < n.reversal_per_pass:
            self._returning("reversal")
        if rng.random() < n.staged_per_pass:
            self._stage()
        start_s = self.cursor_s
        direction: Direction = rng.choice(("in", "out"))
        speed = self._speed()
        leave_s = self._cross(direction, start_s, speed)
        if (
            len(self.passes) < count and rng.random() < n.close_pair_p
        ):  # a convoy: same lane, same speed
            leave_s = self._cross(direction, start_s + rng.uniform(*self.traffic.close_s), speed)
        self._neighbours(start_s, leave_s)
        self.cursor_s = leave_s + rng.uniform(*self.traffic.gap_s)

    def finish(self) -> None:
        for staged in self.staged:
            self._unstage(staged, cross=False, at_s=max(self.cursor_s, staged.ready_s))
        self.staged.clear()

    def _load(self) -> tuple[int, tuple[bytes, ...], bytes]:
        t, rng = self.traffic, self.rng
        gtins = rng.sample(t.gtins, rng.randint(*t.gtins_per_load))
        items = tuple(self.tags.item(rng.choice(gtins)) for _ in range(rng.randint(*t.units)))
        self.loads += 1
        return self.loads, items, self.tags.pallet()

    def _move(
        self, door: str, path: Path, load: int, items: tuple[bytes, ...], pallet: bytes
    ) -> None:
        rng = random.Random(f"load:{self.seed}:{load}")
        self.world.move(door, path, place(items, pallet, self.noise, rng), rng)

    def _speed(self) -> float:
        return self.rng.uniform(*self.traffic.speed_m_per_s)

    def _lane(self) -> float:
        return self.rng.uniform(-self.traffic.lane_m, self.traffic.lane_m)

    def _cross(self, direction: Direction, at_s: float, speed_m_per_s: float) -> float:
        load, items, pallet = self._load()
        side: Side = "outside" if direction == "in" else "inside"
        half = self.portals[0].layout.field_half_m
        path = crossing(side, at_s, speed_m_per_s, half, self._lane())
        self._move(self.door, path, load, items, pallet)
        self.passes.append(
            TruePass(self.door, direction, load, _hex(items, pallet), path.enter_s, path.leave_s)
        )
        return path.leave_s

    def _returning(self, kind: ReturningKind) -> None:
        load, items, pallet = self._load()
        side: Side = self.rng.choice(("outside", "inside"))
        half = self.portals[0].layout.field_half_m
        hold_s = self.rng.uniform(0.3, 1.5)
        depth_m = self.rng.uniform(0.0, 0.8)
        path = returning(
            kind, side, self.cursor_s, self._speed(), half, self._lane(), hold_s, depth_m
        )
        self._move(self.door, path, load, items, pallet)
        self.distractors.append(
            Distractor(kind, self.door, side, load, _hex(items, pallet), path.enter_s, path.leave_s)
        )
        self.cursor_s = path.leave_s + self.rng.uniform(*self.traffic.gap_s)

    def _stage(self) -> None:
        load, items, pallet = self._load()
        side: Side = self.rng.choice(("outside", "inside"))
        ready_s = self.cursor_s + self.rng.uniform(*self.traffic.stand_s)
        self.staged.append(_Staged(load, items, pallet, side, self.cursor_s, ready_s))
        self.cursor_s += 2 * self.traffic.gap_s[1]  # set down, forklift gone

    def _leave_staged(self, cross_ok: bool) -> None:
        for staged in [s for s in self.staged if s.ready_s <= self.cursor_s]:
            self.staged.remove(staged)
            cross = self.rng.random() < 0.5 and cross_ok
            self._unstage(staged, cross=cross, at_s=self.cursor_s)
            cross_ok = False

    def _unstage(self, s: _Staged, cross: bool, at_s: float) -> None:
        """The staged pallet's whole path: in, standing until `at_s`, then out or across."""
        half = self.portals[0].layout.field_half_m
        speed = self._speed()
        stand_s = max(0.0, at_s - s.at_s - (half - STAGE_X_M) / speed)
        y_m = self.rng.choice((-STAGED_Y_M, STAGED_Y_M))
        epcs = _hex(s.items, s.pallet)
        if cross:
            path = crossing(s.side, s.at_s, speed, half, y_m, stand_s)
            direction: Direction = "in" if s.side == "outside" else "out"
            self.passes.append(
                TruePass(self.door, direction, s.load, epcs, path.enter_s, path.leave_s)
            )
        else:
            path = returning("staged", s.side, s.at_s, speed, half, y_m, stand_s)
            self.distractors.append(
                Distractor("staged", self.door, s.side, s.load, epcs, path.enter_s, path.leave_s)
            )
        self._move(self.door, path, s.load, s.items, s.pallet)
        self.cursor_s = max(self.cursor_s, path.leave_s + self.rng.uniform(*self.traffic.gap_s))

    def _neighbours(self, from_s: float, to_s: float) -> None:
        """Loads crossing the neighbour door while this door's pass goes on."""
        n = self.portals[0].neighbour
        assert n is not None
        half = self.portals[0].layout.field_half_m
        for _ in range(_poisson_small(self.rng, self.noise.neighbour_per_pass)):
            load, items, pallet = self._load()
            direction: Direction = self.rng.choice(("in", "out"))
            side: Side = "outside" if direction == "in" else "inside"
            at_s = self.rng.uniform(from_s - 3.0, to_s)
            path = crossing(side, max(at_s, 0.0), self._speed(), half, self._lane())
            self._move(n, path, load, items, pallet)
            self.distractors.append(
                Distractor(
                    "neighbour-traffic",
                    n,
                    side,
                    load,
                    _hex(items, pallet),
                    path.enter_s,
                    path.leave_s,
                    direction,
                )
            )


def _hex(items: tuple[bytes, ...], pallet: bytes) -> tuple[str, ...]:
    return tuple(e.hex().upper() for e in (*items, pallet))


def _poisson_small(rng: random.Random, mean: float) -> int:
    k, p, limit = 0, rng.random(), math.exp(-mean)
    while p > limit:
        k += 1
        p *= rng.random()
    return k
