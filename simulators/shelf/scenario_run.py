"""A scenario's shelves: each one's lanes and the physical changes on them, its device faults,
and the moves a shelf can only flag (an item put in another item's lane).

Events are witnessed in time order. A lane's id in the world is its location code. A pick by a
shelf takes pieces of the lane's item; a putaway or return of the lane's item puts new pieces;
one of another item puts foreign pieces (their own weights) and is flagged: physically it is
in the lane (the ground truth moves it), but the shelf cannot count it, so the ledger waits.
"""

from dataclasses import dataclass, field

from simulators.ground_truth import FlaggedMove
from simulators.scenario import (
    Event,
    HandRest,
    Item,
    Knock,
    Pick,
    Putaway,
    Scenario,
    ShelfActor,
    ShelfDeviceFault,
    ShelfLane,
    ShelfMove,
    ShelfOnly,
)
from simulators.shelf import lanes
from simulators.shelf.faults import ShelfFault
from simulators.shelf.lanes import CellSpec, Change, Foreign, LaneSpec, Pieces
from simulators.shelf.noise import ShelfNoise
from simulators.shelf.scenario_checks import lane_cells
from simulators.shelf.world import UPDATE_HZ, ShelfWorld

SETTLE_MAX_S = 2.0  # every change has rung out by then (ShelfNoise.settle_s)


@dataclass(frozen=True, slots=True)
class ShelfRun:
    """What the Modbus simulator of one shelf needs: the world's inputs and the faults."""

    shelf: str
    profile: str  # a weighing-transmitter profile name or path
    transport: str  # "tcp" | "rtu"
    lanes: tuple[LaneSpec, ...]
    changes: tuple[Change, ...]  # time-ordered
    seed: int
    noise: ShelfNoise
    faults: tuple[ShelfFault, ...]  # time-ordered

    def world(self, update_hz: float = UPDATE_HZ) -> ShelfWorld:
        """A fresh world (scenario time 0 = the simulator's start, at speed 1)."""
        return ShelfWorld(self.lanes, self.changes, self.seed, self.noise, update_hz)

    @property
    def units(self) -> tuple[int, ...]:
        return tuple(sorted({c.unit for lane in self.lanes for c in lane.cells}))

    @property
    def end_s(self) -> float:
        """Every change has settled (a hand lifted) and every fault has ended by then."""
        ends = [c.at_s + (c.for_s if isinstance(c, lanes.HandRest) else 0.0) for c in self.changes]
        faults = [f.at_s + f.for_s for f in self.faults]
        return max([e + SETTLE_MAX_S for e in ends] + faults, default=0.0)


def scenario_noise(actor: ShelfActor) -> ShelfNoise:
    """The documented default levels times `noise_scale`, of the noises the shelf lists."""
    return ShelfNoise(scale=actor.noise_scale).only(actor.noise)


def _lane_spec(lane: ShelfLane, item: Item) -> LaneSpec:
    assert item.unit_weight_g is not None  # checked when the scenario loaded
    cells = tuple(CellSpec(u, c, share) for u, c, share in lane_cells(lane))
    return LaneSpec(
        lane.location, lane.sku, item.unit_weight_g, cells, lane.location, item.piece_weight_cv
    )


@dataclass(slots=True)
class ShelfPlanner:
    """Feed it every event in time order (`witness`)."""

    scenario: Scenario
    actors: dict[str, ShelfActor] = field(init=False)
    items: dict[str, Item] = field(init=False)
    lane_sku: dict[str, str] = field(init=False)  # lane location -> its item
    changes: dict[str, list[Change]] = field(init=False)
    faults: dict[str, list[ShelfFault]] = field(init=False)
    flagged: list[FlaggedMove] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.actors = {a.id: a for a in self.scenario.shelves}
        self.items = {i.sku: i for i in self.scenario.items}
        self.lane_sku = {lane.location: lane.sku for a in self.scenario.shelves for lane in a.lanes}
        self.changes = {a.id: [] for a in self.scenario.shelves}
        self.faults = {a.id: [] for a in self.scenario.shelves}

    def is_shelf(self, event: Event) -> bool:
        if isinstance(event, ShelfOnly):
            return True
        return isinstance(event, ShelfMove) and event.by in self.actors

    def witness(self, event: Event) -> None:
        if not self.is_shelf(event):
            return
        if isinstance(event, ShelfDeviceFault):
            fault = ShelfFault(
                event.at, event.fault, event.unit, event.for_s, event.delay_ms, event.exception_code
            )
            self.faults[event.by].append(fault)
        elif isinstance(event, HandRest):
            change: Change = lanes.HandRest(event.at, event.location, event.grams, event.for_s)
            self.changes[event.by].append(change)
        elif isinstance(event, Knock):
            self.changes[event.by].append(lanes.Knock(event.at, event.location))
        elif isinstance(event, ShelfMove):
            self.changes[event.by].append(self._move(event))

    def _move(self, event: ShelfMove) -> Change:
        (line,) = event.lines
        if isinstance(event, Pick):
            return Pieces(event.at, event.from_, -line.qty)
        if line.sku == self.lane_sku[event.to]:
            return Pieces(event.at, event.to, line.qty)
        source = event.from_ if isinstance(event, Putaway) else None
        self.flagged.append(FlaggedMove(line.sku, source, event.to, line.qty))
        item = self.items[line.sku]
        assert item.unit_weight_g is not None  # checked when the scenario loaded
        return Foreign(
            event.at, event.to, line.qty, item.unit_weight_g, item.piece_weight_cv, line.sku
        )

    def result(self) -> dict[str, ShelfRun]:
        return {a.id: self._run(a) for a in self.scenario.shelves}

    def _run(self, actor: ShelfActor) -> ShelfRun:
        specs = tuple(_lane_spec(lane, self.items[lane.sku]) for lane in actor.lanes)
        return ShelfRun(
            actor.id,
            actor.profile,
            actor.transport,
            specs,
            tuple(self.changes[actor.id]),
            actor.seed,
            scenario_noise(actor),
            tuple(self.faults[actor.id]),
        )
