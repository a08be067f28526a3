"""What a scenario's shelves and the events they see must satisfy; problems as
'  field.path: reason' lines, like `simulators.scenario.reference_problems`."""

from device_profiles.errors import ProfileError
from device_profiles.loader import load_profile_of
from device_profiles.weighing import WeighingProfile
from simulators.ground_truth import touched
from simulators.scenario import (
    Event,
    HandRest,
    Item,
    Knock,
    Pick,
    Putaway,
    Return,
    Scenario,
    ShelfActor,
    ShelfDeviceFault,
    ShelfLane,
    ShelfMove,
    ShelfOnly,
)

SHARE_TOLERANCE = 1e-6
# A misplaced item whose weight is this close to a whole number of the lane's units would be
# counted as that many units: no shelf could flag it, so a scenario may not contain it.
MISPLACED_MARGIN_UNITS = 0.25


def lane_cells(lane: ShelfLane) -> list[tuple[int, int, float]]:
    """(unit, channel, share) of every load cell under the lane."""
    if lane.cells:
        return [(c.unit, c.channel, c.share) for c in lane.cells]
    assert lane.unit is not None
    return [(lane.unit, lane.channel, 1.0)]


def shelf_problems(s: Scenario) -> list[str]:
    others = {a.id for a in s.scanners} | {p.id for p in s.portals}
    out = [
        f"  shelves.{n}.id: {shelf.id!r} is also a scanner or portal"
        for n, shelf in enumerate(s.shelves)
        if shelf.id in others
    ]
    seen: dict[str, str] = {}  # lane location -> where it was first defined
    for n, shelf in enumerate(s.shelves):
        out += _shelf(f"shelves.{n}", shelf, s, seen)
    shelves = {shelf.id: shelf for shelf in s.shelves}
    for n, event in enumerate(s.events):
        by = shelves.get(getattr(event, "by", ""))
        if isinstance(event, ShelfOnly):
            out += _shelf_only(f"events.{n}", event, by)
        elif by is not None:
            out += _shelf_move(f"events.{n}", event, by, s)
        else:
            out += [
                f"  events.{n}: touches shelf lane {loc!r}; only its shelf sees a lane"
                for loc in sorted(touched(event) & set(seen))
            ]
    return out


def _shelf(where: str, shelf: ShelfActor, s: Scenario, seen: dict[str, str]) -> list[str]:
    out: list[str] = []
    channels = None
    try:
        channels = load_profile_of(shelf.profile, WeighingProfile).channels
    except ProfileError as e:
        out.append(f"  {where}.profile: {e}")
    cells: set[tuple[int, int]] = set()
    for m, lane in enumerate(shelf.lanes):
        here = f"{where}.lanes.{m}"
        out += _lane(here, lane, s)
        first = seen.setdefault(lane.location, here)
        if first != here:
            out.append(f"  {here}.location: {lane.location!r} is already a lane ({first})")
        if (lane.unit is None) == (not lane.cells):
            out.append(f"  {here}: give either unit (and channel) or cells, not both or neither")
            continue
        if lane.cells and abs(sum(c.share for c in lane.cells) - 1) > SHARE_TOLERANCE:
            out.append(f"  {here}.cells: shares must sum to 1")
        for unit, channel, _ in lane_cells(lane):
            if (unit, channel) in cells:
                out.append(f"  {here}: unit {unit} channel {channel} is under another lane")
            cells.add((unit, channel))
            if channels is not None and channel > channels:
                out.append(
                    f"  {here}: channel {channel}, but {shelf.profile} has {channels} channel(s)"
                )
    return out


def _lane(here: str, lane: ShelfLane, s: Scenario) -> list[str]:
    kinds = {loc.code: loc.kind for loc in s.locations}
    items = {i.sku: i for i in s.items}
    out: list[str] = []
    if lane.location not in kinds:
        out.append(f"  {here}.location: unknown location {lane.location!r}")
    elif kinds[lane.location] != "shelf":
        out.append(f"  {here}.location: {lane.location!r} is a {kinds[lane.location]}, not a shelf")
    item = items.get(lane.sku)
    if item is None:
        out.append(f"  {here}.sku: unknown item {lane.sku!r}")
    elif item.unit_weight_g is None:
        out.append(f"  {here}.sku: item {lane.sku!r} has no unit_weight_g")
    if lane.restock_from is not None:
        if lane.restock_from not in kinds:
            out.append(f"  {here}.restock_from: unknown location {lane.restock_from!r}")
        if lane.restock_from == lane.location:
            out.append(f"  {here}.restock_from: a lane does not restock from itself")
    return out


def _lanes(shelf: ShelfActor) -> dict[str, ShelfLane]:
    return {lane.location: lane for lane in shelf.lanes}


def _shelf_only(where: str, event: ShelfOnly, shelf: ShelfActor | None) -> list[str]:
    if shelf is None:
        return [f"  {where}.by: unknown shelf {event.by!r}"]
    if isinstance(event, HandRest | Knock) and event.location not in _lanes(shelf):
        return [f"  {where}.location: {event.location!r} is not a lane of shelf {shelf.id!r}"]
    if isinstance(event, ShelfDeviceFault):
        units = {u for lane in shelf.lanes for u, _, _ in _cells_or_none(lane)}
        if event.unit not in units:
            return [f"  {where}.unit: shelf {shelf.id!r} has no device {event.unit}"]
    return []


def _cells_or_none(lane: ShelfLane) -> list[tuple[int, int, float]]:
    return lane_cells(lane) if (lane.unit is None) != (not lane.cells) else []


def _shelf_move(where: str, event: Event, shelf: ShelfActor, s: Scenario) -> list[str]:
    if not isinstance(event, ShelfMove):
        return [f"  {where}.by: {shelf.id!r} is a shelf; shelves see picks, putaways and returns"]
    out = [f"  {where}.noise: scanner noise on a shelf event" for _ in event.noise[:1]]
    if len(event.lines) != 1:
        return [*out, f"  {where}.lines: a lane holds one item: give one line"]
    line = event.lines[0]
    if line.lot is not None or line.expiry is not None:
        out.append(f"  {where}.lines.0: weight carries no lot or expiry")
    field, code = ("from", event.from_) if isinstance(event, Pick) else ("to", event.to)
    lane = _lanes(shelf).get(code)
    if lane is None:
        return [*out, f"  {where}.{field}: {code!r} is not a lane of shelf {shelf.id!r}"]
    if isinstance(event, Putaway) and event.from_ != lane.restock_from:
        out.append(f"  {where}.from: lane {code!r} restocks from {lane.restock_from!r}")
    if isinstance(event, Return) and lane.restock_from is not None:
        out.append(f"  {where}: lane {code!r} restocks from {lane.restock_from!r}; a putaway")
    if line.sku == lane.sku:
        return out
    if isinstance(event, Pick):
        return [*out, f"  {where}.lines.0.sku: the lane holds {lane.sku!r}, not {line.sku!r}"]
    items = {i.sku: i for i in s.items}
    return out + _misplaced(where, line.sku, line.qty, items.get(line.sku), items.get(lane.sku))


def _misplaced(
    where: str, sku: str, qty: int, item: Item | None, lane_item: Item | None
) -> list[str]:
    if item is None or lane_item is None or lane_item.unit_weight_g is None:
        return []  # reported elsewhere
    if item.unit_weight_g is None:
        return [f"  {where}.lines.0.sku: misplaced item {sku!r} has no unit_weight_g"]
    units = qty * item.unit_weight_g / lane_item.unit_weight_g
    if abs(units - round(units)) < MISPLACED_MARGIN_UNITS:
        return [
            f"  {where}.lines.0: {qty} x {sku} weigh {units:.2f} units of {lane_item.sku}: "
            f"within {MISPLACED_MARGIN_UNITS} of a whole number, no shelf could flag it"
        ]
    return []
