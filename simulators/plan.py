"""A scenario turned into a run: each scanner's timed reads, each RFID portal's tag sightings
(simulators.portal) and true passes, and the ground truth at the end.

Events are replayed in time order. Each scanner actor is one person: their reads for an event
start at the event's time or when they finish the previous one, one `scan_interval_s` apart.
The same label is never read twice by one person within `repeat_gap_min_s` (except as the
double-scan noise), so the edge's duplicate suppression only ever removes the noise.
"""

from dataclasses import dataclass, field
from pathlib import Path

from simulators.barcodes import Barcode
from simulators.ground_truth import Balance, FlaggedMove, Stock, touched
from simulators.portal.scenario_run import PortalFault, PortalPlanner
from simulators.portal.truth import Distractor, TruePass
from simulators.scan_script import Step, steps_for
from simulators.scenario import Count, Scanned, Scenario, ScenarioError, Shrink, load
from simulators.shelf.faults import ShelfFault
from simulators.shelf.scenario_run import ShelfPlanner, ShelfRun
from simulators.shelf.world import ShelfWorld
from simulators.sightings import Sighting

REPEAT_GAP_MIN_S = 1.5


@dataclass(frozen=True, slots=True)
class TimedScan:
    at_s: float
    barcode: Barcode
    noise: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario
    scans: dict[str, tuple[TimedScan, ...]]
    truth: tuple[Balance, ...]
    # Per portal id: the tags its reader sees (time-sorted) and its reader's faults.
    sightings: dict[str, tuple[Sighting, ...]] = field(default_factory=dict)
    faults: dict[str, tuple[PortalFault, ...]] = field(default_factory=dict)
    passes: tuple[TruePass, ...] = ()  # loads that really crossed a portal's door
    distractors: tuple[Distractor, ...] = ()  # loads that moved in a read field, no crossing
    # Per shelf id: its lanes, the physical changes on them and its devices' faults.
    shelves: dict[str, ShelfRun] = field(default_factory=dict)
    # Moves that physically happened but that their shelf can only flag (items put in another
    # item's lane): the ledger is expected to lack them (they wait in review).
    flagged: tuple[FlaggedMove, ...] = ()

    @property
    def duration_s(self) -> float:
        scans = max((s[-1].at_s for s in self.scans.values() if s), default=0.0)
        passes = max((p.leave_s for p in self.passes), default=0.0)
        others = max((d.leave_s for d in self.distractors), default=0.0)
        faults = max((f.at_s + f.down_s for fs in self.faults.values() for f in fs), default=0.0)
        shelves = max((run.end_s for run in self.shelves.values()), default=0.0)
        return max(scans, passes, others, faults, shelves)


@dataclass(slots=True)
class _Span:
    index: int
    actor: str
    start_s: float
    end_s: float
    locations: set[str]


@dataclass(slots=True)
class _Person:
    free_s: float = 0.0
    scans: list[TimedScan] = field(default_factory=list)
    last_read_s: dict[Barcode, float] = field(default_factory=dict)


def build(path: Path) -> Plan:
    """Load and plan a scenario file; any problem names the file and the field path."""
    scenario = load(path)
    try:
        return plan(scenario)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: {e}") from None


def plan(scenario: Scenario) -> Plan:
    stock = Stock(scenario)
    items = {i.sku: i for i in scenario.items}
    people = {a.id: _Person() for a in scenario.scanners}
    spans: list[_Span] = []
    portals = PortalPlanner(scenario)
    shelves = ShelfPlanner(scenario)
    for index, event in scenario.timeline():
        portals.witness(index, event)
        shelves.witness(event)
        by_person = not (portals.is_portal(event) or shelves.is_shelf(event))
        if isinstance(event, Scanned) and by_person:
            steps = steps_for(event, items, stock, scenario.double_scan_gap_s)
            span = _schedule(scenario, people[event.by], event.at, steps)
            spans.append(_Span(index, event.by, event.at, span, touched(event)))
        stock.apply(index, event)
    _check_counts(scenario, spans)
    _check_shrinks_counted(scenario)
    scans = {actor: tuple(p.scans) for actor, p in people.items()}
    run = portals.result()
    return Plan(
        scenario,
        scans,
        stock.balances(),
        run.sightings,
        run.faults,
        run.passes,
        run.distractors,
        shelves.result(),
        tuple(shelves.flagged),
    )


def shelf_world(plan: Plan, shelf_id: str) -> ShelfWorld:
    """A fresh world of one shelf of the plan, for its Modbus simulator (time 0 = its start)."""
    return _shelf(plan, shelf_id).world()


def shelf_faults(plan: Plan, shelf_id: str) -> tuple[ShelfFault, ...]:
    """The shelf's device faults in time order, for its Modbus simulator to enact."""
    return _shelf(plan, shelf_id).faults


def _shelf(plan: Plan, shelf_id: str) -> ShelfRun:
    run = plan.shelves.get(shelf_id)
    if run is None:
        known = ", ".join(sorted(plan.shelves)) or "none"
        raise ScenarioError(f"no shelf {shelf_id!r} in the scenario (shelves: {known})")
    return run


def _schedule(scenario: Scenario, person: _Person, at_s: float, steps: list[Step]) -> float:
    """Append the steps to the person's reads; return when the last one happens."""
    t = max(at_s, person.free_s)
    previous: float | None = None
    for step in steps:
        if previous is not None:
            t = previous + (scenario.scan_interval_s if step.gap_s is None else step.gap_s)
        if not step.noise:
            t = max(t, person.last_read_s.get(step.barcode, -REPEAT_GAP_MIN_S) + REPEAT_GAP_MIN_S)
            person.last_read_s[step.barcode] = t
        person.scans.append(TimedScan(round(t, 3), step.barcode, step.noise))
        previous = t
    person.free_s = t + scenario.scan_interval_s
    return t


def _check_counts(scenario: Scenario, spans: list[_Span]) -> None:
    """A count must not overlap another person's work at the same place: the ledger sees
    each person's reads in order, but not the order between people closer than this."""
    margin = scenario.count_isolation_s
    for count in spans:
        if not isinstance(scenario.events[count.index], Count):
            continue
        for other in spans:
            if other.actor == count.actor or not (other.locations & count.locations):
                continue
            if other.start_s < count.end_s + margin and other.end_s > count.start_s - margin:
                raise ScenarioError(
                    f"events.{count.index}: the count at {sorted(count.locations)[0]} is within "
                    f"count_isolation_s={margin} of events.{other.index} by {other.actor} "
                    f"(reads {other.start_s:.2f}-{other.end_s:.2f} s)"
                )


def _check_shrinks_counted(scenario: Scenario) -> None:
    """Shrink is invisible to the book until someone counts the place; otherwise the ledger
    could never match the ground truth."""
    timeline = scenario.timeline()
    for pos, (index, event) in enumerate(timeline):
        if not isinstance(event, Shrink):
            continue
        later = (e for _, e in timeline[pos + 1 :])
        if not any(isinstance(e, Count) and e.location == event.location for e in later):
            raise ScenarioError(
                f"events.{index}: shrink at {event.location} is never counted after"
            )
