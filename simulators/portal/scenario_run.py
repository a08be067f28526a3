"""A scenario's portals: what each reader sees, which loads really crossed, which faults happen.

Events are witnessed in time order (the same order as the ground truth). Every event, by a
scanner or a portal, also moves the RFID tags on the units it moves, so a shipment through a
portal ships the tags that are at that door: units received there through a portal keep their
EPCs; units without a known tag (received by scanner) get fresh ones. A receipt always gets
fresh EPCs, so the ledger never receives an EPC it already holds in stock.
"""

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from simulators.ground_truth import ends
from simulators.portal.epc import hex_upper
from simulators.portal.identity import TagMaker
from simulators.portal.layout import PortalLayout
from simulators.portal.motion import Path, crossing, returning
from simulators.portal.noise import NoiseLevel
from simulators.portal.radio import PROFILES
from simulators.portal.random_passes import STAGED_Y_M
from simulators.portal.tags import place
from simulators.portal.truth import Direction, Distractor, Side, TruePass
from simulators.portal.world import Portal, World, placement_noise
from simulators.scenario import (
    Backout,
    Delivery,
    Event,
    Item,
    Line,
    NeighbourTraffic,
    PortalActor,
    PortalOnly,
    ReaderFault,
    Reversal,
    Scenario,
    Shipment,
    Staged,
)
from simulators.sightings import Sighting

BACKOUT_HOLD_S = 1.0
REVERSAL_HOLD_S = 0.5
LANE_M = 0.3

# (sku, location, lot)
_Key = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class PortalFault:
    """The reader of a portal reboots or drops its connection at `at_s` for `down_s`."""

    at_s: float
    fault: Literal["reboot", "drop"]
    down_s: float


@dataclass(frozen=True, slots=True)
class PortalRun:
    sightings: dict[str, tuple[Sighting, ...]]  # portal id -> time-sorted sightings
    faults: dict[str, tuple[PortalFault, ...]]  # portal id -> faults in time order
    passes: tuple[TruePass, ...]  # every load that crossed a portal's door, by enter_s
    distractors: tuple[Distractor, ...]


def scenario_noise(actor: PortalActor) -> NoiseLevel:
    """The documented default levels (times `noise_scale`) of the noises the portal lists.

    Measurement noise (RSSI fading, phase noise) and the wall to the neighbour door are always
    there; tags that never read and random distractors are not (scenarios name their events).
    """
    on = NoiseLevel().scaled(actor.noise_scale)
    base = NoiseLevel()
    has = set(actor.noise)
    return NoiseLevel(
        scale=actor.noise_scale,
        miss_read_p=on.miss_read_p if "missed-reads" in has else 0.0,
        shadowing_db=on.shadowing_db if "shadowing" in has else 0.0,
        fading_db=base.fading_db,
        phase_noise_deg=base.phase_noise_deg,
        multipath_loss_db=on.multipath_loss_db if "multipath" in has else 1000.0,
        bad_orientation_p=on.bad_orientation_p if "orientation" in has else 0.0,
        bad_orientation_loss_db=on.bad_orientation_loss_db,
        one_side_p=on.one_side_p if "one-side" in has else 0.0,
        dead_tag_p=0.0,
        neighbour_per_pass=0.0,
        neighbour_isolation_db=base.neighbour_isolation_db,
        staged_per_pass=0.0,
        backout_per_pass=0.0,
        reversal_per_pass=0.0,
        close_pair_p=0.0,
    )


def _portal(actor: PortalActor) -> Portal:
    layout = PortalLayout(outside_ports=actor.outside_ports, inside_ports=actor.inside_ports)
    return Portal(
        actor.id,
        actor.door,
        layout,
        PROFILES[actor.profile],
        scenario_noise(actor),
        actor.neighbour,
    )


@dataclass(slots=True)
class PortalPlanner:
    """Feed it every event in time order (`witness`) before the ground truth applies it."""

    scenario: Scenario
    actors: dict[str, PortalActor] = field(init=False)
    portals: dict[str, Portal] = field(init=False)
    world: World = field(init=False)
    items: dict[str, Item] = field(init=False)
    tags: TagMaker = field(init=False)
    at_location: dict[_Key, deque[bytes]] = field(default_factory=dict)
    passes: list[TruePass] = field(default_factory=list)
    distractors: list[Distractor] = field(default_factory=list)
    faults: dict[str, list[PortalFault]] = field(init=False)

    def __post_init__(self) -> None:
        self.actors = {a.id: a for a in self.scenario.portals}
        self.portals = {a.id: _portal(a) for a in self.scenario.portals}
        self.world = World(list(self.portals.values()))
        self.items = {i.sku: i for i in self.scenario.items}
        self.tags = TagMaker(f"{self.scenario.site}:{[a.seed for a in self.scenario.portals]}")
        self.faults = {a.id: [] for a in self.scenario.portals}

    def is_portal(self, event: Event) -> bool:
        if isinstance(event, PortalOnly):
            return True
        return isinstance(event, Delivery | Shipment) and event.by in self.portals

    def witness(self, index: int, event: Event) -> None:
        if isinstance(event, Delivery | Shipment) and event.by in self.portals:
            self._cross(index, event, self.portals[event.by])
        elif isinstance(event, ReaderFault):
            self.faults[event.by].append(PortalFault(event.at, event.fault, event.down_s))
        elif isinstance(event, PortalOnly):
            self._distract(index, event, self.portals[event.by])
        else:
            self._carry(event)

    def result(self) -> PortalRun:
        return PortalRun(
            {p: self.world.sightings(p) for p in self.portals},
            {p: tuple(f) for p, f in self.faults.items()},
            tuple(sorted(self.passes, key=lambda p: p.enter_s)),
            tuple(self.distractors),
        )

    def _carry(self, event: Event) -> None:
        """Tagged units moved by anything else take their tags along (or out of the site)."""
        take, put = ends(event)
        if take is None:
            return
        for line in getattr(event, "lines", ()):
            moved = self._take((line.sku, take, line.lot), line.qty)
            if put is not None:
                self._queue((line.sku, put, line.lot)).extend(moved)

    def _take(self, key: _Key, qty: int) -> list[bytes]:
        queue = self._queue(key)
        return [queue.popleft() for _ in range(min(qty, len(queue)))]

    def _queue(self, key: _Key) -> deque[bytes]:
        return self.at_location.setdefault(key, deque())

    def _fresh(self, line: Line, qty: int) -> list[bytes]:
        item = self.items[line.sku]
        return [self.tags.item(item.gtin, item.company_prefix_digits) for _ in range(qty)]

    def _pallet(self, lines: tuple[Line, ...], portal: Portal) -> bytes | None:
        """The pallet's SSCC, under the company prefix of its first line's item."""
        if not self.actors[portal.id].pallet_tag:
            return None
        item = self.items[lines[0].sku]
        return self.tags.pallet(item.gtin[1 : 1 + item.company_prefix_digits])

    def _rng(self, index: int, portal: Portal) -> random.Random:
        return random.Random(f"portal:{self.actors[portal.id].seed}:{portal.id}:{index}")

    def _speed(self, event: Delivery | Shipment | PortalOnly, portal: Portal) -> float:
        speed = getattr(event, "speed_m_per_s", None)
        return float(speed) if speed is not None else self.actors[portal.id].speed_m_per_s

    def _cross(self, index: int, event: Delivery | Shipment, portal: Portal) -> None:
        rng = self._rng(index, portal)
        epcs: list[bytes] = []
        for line in event.lines:
            if isinstance(event, Delivery):
                units = self._fresh(line, line.qty)
                self._queue((line.sku, portal.door, None)).extend(units)
            else:
                units = self._take((line.sku, portal.door, None), line.qty)
                units += self._fresh(line, line.qty - len(units))
            epcs += units
        pallet = self._pallet(event.lines, portal)
        side: Side = "outside" if isinstance(event, Delivery) else "inside"
        half = portal.layout.field_half_m
        lane = rng.uniform(-LANE_M, LANE_M)
        path = crossing(side, event.at, self._speed(event, portal), half, lane, event.stand_s)
        self._move(portal.door, path, epcs, pallet, rng)
        direction: Direction = "in" if isinstance(event, Delivery) else "out"
        self.passes.append(
            TruePass(portal.door, direction, index, _hex(epcs, pallet), path.enter_s, path.leave_s)
        )

    def _distract(
        self, index: int, event: Staged | Backout | Reversal | NeighbourTraffic, portal: Portal
    ) -> None:
        rng = self._rng(index, portal)
        epcs = [e for line in event.lines for e in self._fresh(line, line.qty)]
        pallet = self._pallet(event.lines, portal)
        speed, half = self._speed(event, portal), portal.layout.field_half_m
        door, direction = portal.door, None
        if isinstance(event, NeighbourTraffic):
            assert portal.neighbour is not None
            door, direction = portal.neighbour, event.direction
            side: Side = "outside" if event.direction == "in" else "inside"
            path = crossing(side, event.at, speed, half, rng.uniform(-LANE_M, LANE_M))
        else:
            side, path = event.side, _returning_path(event, speed, half, rng)
        self._move(door, path, epcs, pallet, rng)
        self.distractors.append(
            Distractor(
                event.kind,
                door,
                side,
                index,
                _hex(epcs, pallet),
                path.enter_s,
                path.leave_s,
                direction,
            )
        )

    def _move(
        self, door: str, path: Path, epcs: list[bytes], pallet: bytes | None, rng: random.Random
    ) -> None:
        noise = placement_noise(list(self.portals.values()), door)
        self.world.move(door, path, place(tuple(epcs), pallet, noise, rng), rng)


def _returning_path(
    event: Staged | Backout | Reversal, speed: float, half: float, rng: random.Random
) -> Path:
    lane = rng.uniform(-LANE_M, LANE_M)
    if isinstance(event, Staged):
        y_m = rng.choice((-STAGED_Y_M, STAGED_Y_M))
        return returning("staged", event.side, event.at, speed, half, y_m, event.for_s)
    if isinstance(event, Backout):
        return returning("backout", event.side, event.at, speed, half, lane, BACKOUT_HOLD_S)
    return returning(
        "reversal", event.side, event.at, speed, half, lane, REVERSAL_HOLD_S, event.depth_m
    )


def _hex(epcs: list[bytes], pallet: bytes | None) -> tuple[str, ...]:
    return tuple(hex_upper(e) for e in (*epcs, *([pallet] if pallet else [])))
