"""Scenario files: what physically happens at a simulated site, and when.

A scenario names the site, its items, locations and actors (scanners, RFID portals at dock
doors, load-cell shelves) and a timeline of physical events. Actors turn the events they witness
into what their device emits (see `simulators.plan`, `simulators.portal`);
`simulators.ground_truth` replays the same events to know the stock that is really there.
The two never share state.

Times are seconds from the start of the run at speed 1.
"""

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulators.barcodes import gtin_ok
from simulators.portal.radio import PROFILES
from simulators.shelf.faults import FaultKind
from simulators.shelf.noise import ShelfNoiseName
from stockwire.config import describe, read_toml
from stockwire.errors import ConfigError
from stockwire.names import Gtin14, Ident, Lot, Sku

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
Noise = Literal["double-scan", "garbage"]
# Physical noise a portal's world may have (see simulators/portal/noise.py for the levels).
PortalNoise = Literal["missed-reads", "shadowing", "orientation", "one-side", "multipath"]
Side = Literal["outside", "inside"]


class ScenarioError(ConfigError):
    """A scenario file is wrong; the message names the file and the field path."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Item(_Model):
    sku: Sku
    gtin: Gtin14
    # How the item's labels are printed: GS1-128 (lot and expiry in the barcode) or plain EAN-13
    # (the person scans a SW:LOT label before it when the stock has a lot).
    label: Literal["gs1", "ean13"] = "gs1"
    # Length of the GS1 company prefix inside the GTIN; SGTIN EPCs (RFID tags) encode it.
    company_prefix_digits: int = Field(default=7, ge=6, le=12)
    # Nominal weight of one unit; items on a shelf lane need it. Each real unit weighs
    # Normal(unit_weight_g, piece_weight_cv x unit_weight_g).
    unit_weight_g: float | None = Field(default=None, gt=0, le=1_000_000)
    piece_weight_cv: float = Field(default=0.01, ge=0, le=0.2)

    @field_validator("gtin")
    @classmethod
    def _check_digit(cls, gtin: str) -> str:
        if not gtin_ok(gtin):
            raise ValueError(f"bad GTIN check digit in {gtin}")
        return gtin


class Location(_Model):
    code: Code
    kind: Literal["dock", "shelf"]


class ScannerActor(_Model):
    id: Ident
    profile: str = Field(default="generic-tcp-scanner", min_length=1, max_length=64)
    home: Code


class PortalActor(_Model):
    """An RFID portal: a reader with antennas facing both sides of a dock door.

    `noise` switches on the physical noise of simulators/portal at its documented default
    levels times `noise_scale` (tags that never read are left out: the ledger could not match).
    `absent_until_s` and reader-fault events only describe; the LLRP simulator enacts them.
    """

    id: Ident
    door: Code
    profile: str = Field(default="impinj-speedway-r420", min_length=1, max_length=64)
    neighbour: Code | None = None  # the next door along the wall, whose traffic leaks in
    speed_m_per_s: float = Field(default=1.5, gt=0, le=5)
    noise: tuple[PortalNoise, ...] = ()
    noise_scale: float = Field(default=1.0, ge=0, le=10)
    tag_level: Literal["item"] = "item"  # one SGTIN-96 tag per unit, plus the pallet's SSCC-96
    pallet_tag: bool = True
    outside_ports: tuple[int, ...] = Field(default=(1, 2), min_length=1, max_length=8)
    inside_ports: tuple[int, ...] = Field(default=(3, 4), min_length=1, max_length=8)
    absent_until_s: float = Field(default=0.0, ge=0)
    seed: int = 0


class ShelfCell(_Model):
    """One load cell of a plate: channel `channel` of device `unit`, carrying `share` of it."""

    unit: int = Field(ge=1, le=247)
    channel: int = Field(default=1, ge=1, le=64)
    share: float = Field(gt=0, le=1)


class ShelfLane(_Model):
    """One lane of a shelf: a location of kind "shelf" holding one item, on one load cell
    (`unit`, `channel`) or a plate of several (`cells`, shares summing to 1). A lane with
    `restock_from` is filled by put-aways from there; without, stock arrives as returns."""

    location: Code
    sku: Sku
    unit: int | None = Field(default=None, ge=1, le=247)
    channel: int = Field(default=1, ge=1, le=64)
    cells: tuple[ShelfCell, ...] = Field(default=(), max_length=16)
    restock_from: Code | None = None


class ShelfActor(_Model):
    """A load-cell shelf: one Modbus bus (`transport` tcp = a Modbus TCP gateway or transmitter,
    rtu = RS-485) whose transmitters are all the `profile` model, one lane per channel or plate.

    `noise` switches on the physical noise of simulators/shelf at its documented default
    levels times `noise_scale` (simulators/shelf/PHYSICS.md); any noise not listed is off.
    Device faults (`shelf-fault` events) only describe; the Modbus simulator enacts them.
    """

    id: Ident
    profile: str = Field(default="laumas-w100", min_length=1, max_length=200)
    transport: Literal["tcp", "rtu"] = "tcp"
    noise: tuple[ShelfNoiseName, ...] = ()
    noise_scale: float = Field(default=1.0, ge=0, le=10)
    seed: int = 0
    lanes: tuple[ShelfLane, ...] = Field(min_length=1, max_length=64)


class Line(_Model):
    sku: Sku
    qty: int = Field(gt=0, le=1_000_000)
    lot: Lot | None = None
    expiry: date | None = None


class _Event(_Model):
    at: float = Field(ge=0)


class _Scanned(_Event):
    by: Ident
    noise: tuple[Noise, ...] = ()


class _Crossing(_Scanned):
    """A delivery or shipment; through a portal (`by` names one) it is a load crossing its door."""

    # Portals only: the load first stands staged in the read field on its side for this long.
    stand_s: float = Field(default=0.0, ge=0, le=3600)
    speed_m_per_s: float | None = Field(default=None, gt=0, le=5)  # portals only


class Delivery(_Crossing):
    kind: Literal["delivery"]
    to: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class Putaway(_Scanned):
    kind: Literal["putaway"]
    from_: Code = Field(alias="from")
    to: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class Transfer(_Scanned):
    kind: Literal["transfer"]
    from_: Code = Field(alias="from")
    to: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class Pick(_Scanned):
    kind: Literal["pick"]
    from_: Code = Field(alias="from")
    lines: tuple[Line, ...] = Field(min_length=1)


class Shipment(_Crossing):
    kind: Literal["shipment"]
    from_: Code = Field(alias="from")
    lines: tuple[Line, ...] = Field(min_length=1)


class Return(_Scanned):
    kind: Literal["return"]
    to: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class Adjustment(_Scanned):
    """Stock found (in) or written off, e.g. damaged and destroyed (out), and booked so."""

    kind: Literal["adjustment"]
    direction: Literal["in", "out"]
    location: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class Count(_Scanned):
    """A person counts every item and lot known at a location; the count fixes the book."""

    kind: Literal["count"]
    location: Code


class Shrink(_Event):
    """Stock disappears physically with nobody scanning anything (theft, unseen damage)."""

    kind: Literal["shrink"]
    location: Code
    lines: tuple[Line, ...] = Field(min_length=1)


class _PortalEvent(_Event):
    by: Ident  # a portal


class _Load(_PortalEvent):
    """A load that moves in a portal's read field without crossing its door: no stock moves.
    Its tags are fresh (never in stock)."""

    lines: tuple[Line, ...] = Field(min_length=1)
    speed_m_per_s: float | None = Field(default=None, gt=0, le=5)


class _Returning(_Load):
    side: Side = "outside"  # where it comes from and goes back to


class Staged(_Returning):
    """A pallet set down in the read field, left standing `for_s`, then taken back."""

    kind: Literal["staged"]
    for_s: float = Field(gt=0, le=3600)


class Backout(_Returning):
    """A forklift noses into the doorway and backs out."""

    kind: Literal["backout"]


class Reversal(_Returning):
    """A load reaches the door plane (`depth_m` past it), reverses and leaves the way it came."""

    kind: Literal["reversal"]
    depth_m: float = Field(default=0.3, ge=0, le=1.5)


class NeighbourTraffic(_Load):
    """A load crossing the portal's neighbour door (no portal there), read weakly by this one."""

    kind: Literal["neighbour-traffic"]
    direction: Literal["in", "out"] = "in"


class ReaderFault(_PortalEvent):
    """The portal's reader reboots or drops its TCP connection for `down_s` (LLRP sim enacts)."""

    kind: Literal["reader-fault"]
    fault: Literal["reboot", "drop"]
    down_s: float = Field(default=5.0, gt=0, le=3600)


class _ShelfEvent(_Event):
    by: Ident  # a shelf


class HandRest(_ShelfEvent):
    """A hand leans on a lane with `grams` for `for_s` (plus tremor), then lifts: no stock moves."""

    kind: Literal["hand-rest"]
    location: Code
    grams: float = Field(gt=0, le=50_000)
    for_s: float = Field(gt=0, le=600)


class Knock(_ShelfEvent):
    """A lane is knocked: it rings out, no stock moves."""

    kind: Literal["knock"]
    location: Code


class ShelfDeviceFault(_ShelfEvent):
    """Device `unit` of the shelf misbehaves for `for_s` (the Modbus simulator enacts it):
    slow (answers `delay_ms` late), silent (no answer), exception (Modbus exception
    `exception_code`), bad-crc (RTU frames with a corrupt CRC), absent (gone, then back)."""

    kind: Literal["shelf-fault"]
    fault: FaultKind
    unit: int = Field(ge=1, le=247)
    for_s: float = Field(gt=0, le=3600)
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    exception_code: int = Field(default=6, ge=1, le=255)


PortalOnly = Staged | Backout | Reversal | NeighbourTraffic | ReaderFault
ShelfOnly = HandRest | Knock | ShelfDeviceFault
Scanned = Delivery | Putaway | Transfer | Pick | Shipment | Return | Adjustment | Count
# What a shelf sees of the scanned kinds (`by` names a shelf): weight leaving or arriving.
ShelfMove = Pick | Putaway | Return
Event = Annotated[
    Delivery
    | Putaway
    | Transfer
    | Pick
    | Shipment
    | Return
    | Adjustment
    | Count
    | Shrink
    | Staged
    | Backout
    | Reversal
    | NeighbourTraffic
    | ReaderFault
    | HandRest
    | Knock
    | ShelfDeviceFault,
    Field(discriminator="kind"),
]


class Scenario(_Model):
    site: Ident
    description: str = ""
    scan_interval_s: float = Field(default=0.3, gt=0, le=60)
    # An accidental second read of the same label, inside the edge's duplicate window.
    double_scan_gap_s: float = Field(default=0.05, ge=0, le=1)
    # No other actor may touch a location this close to a count there (ledger order = time order).
    count_isolation_s: float = Field(default=2.0, ge=0)
    items: tuple[Item, ...] = Field(min_length=1)
    locations: tuple[Location, ...] = Field(min_length=1)
    scanners: tuple[ScannerActor, ...] = ()
    portals: tuple[PortalActor, ...] = ()
    shelves: tuple[ShelfActor, ...] = ()
    events: tuple[Event, ...] = ()

    def scanner(self, scanner_id: str) -> ScannerActor:
        for actor in self.scanners:
            if actor.id == scanner_id:
                return actor
        known = ", ".join(a.id for a in self.scanners) or "none"
        raise ScenarioError(f"no scanner {scanner_id!r} in the scenario (scanners: {known})")

    def portal(self, portal_id: str) -> PortalActor | None:
        return next((p for p in self.portals if p.id == portal_id), None)

    def shelf(self, shelf_id: str) -> ShelfActor | None:
        return next((s for s in self.shelves if s.id == shelf_id), None)

    def timeline(self) -> list[tuple[int, Event]]:
        """(index in the file, event) in time order; equal times keep file order."""
        return sorted(enumerate(self.events), key=lambda pair: pair[1].at)


def load(path: Path) -> Scenario:
    try:
        scenario = Scenario.model_validate(read_toml(path))
    except ConfigError as e:
        raise ScenarioError(str(e)) from None
    except ValidationError as e:
        raise ScenarioError(describe(e, str(path))) from None
    problems = reference_problems(scenario)
    if problems:
        raise ScenarioError("\n".join([f"{path}: {len(problems)} error(s)", *problems]))
    return scenario


def reference_problems(s: Scenario) -> list[str]:
    """Names that do not resolve, as '  field.path: reason' lines."""
    skus = {i.sku for i in s.items}
    codes = {loc.code for loc in s.locations}
    actors = {a.id for a in s.scanners}
    portals = {p.id: p for p in s.portals}
    out = _duplicates("items", [i.sku for i in s.items])
    out += _duplicates("locations", [loc.code for loc in s.locations])
    out += _duplicates("scanners", [a.id for a in s.scanners])
    out += _duplicates("portals", [p.id for p in s.portals])
    out += _duplicates("shelves", [shelf.id for shelf in s.shelves])
    out += [
        f"  portals.{n}.id: {p.id!r} is also a scanner"
        for n, p in enumerate(s.portals)
        if p.id in actors
    ]
    out += [
        f"  items.{n}.gtin: EAN-13 labels need a GTIN starting with 0"
        for n, i in enumerate(s.items)
        if i.label == "ean13" and not i.gtin.startswith("0")
    ]
    for n, actor in enumerate(s.scanners):
        out += _unknown(f"scanners.{n}.home", actor.home, codes, "location")
    for n, portal in enumerate(s.portals):
        out += _portal_problems(f"portals.{n}", portal, s)
    shelves = {shelf.id for shelf in s.shelves}
    for n, event in enumerate(s.events):
        where = f"events.{n}"
        if isinstance(event, Shrink):
            pass
        elif isinstance(event, ShelfOnly) or event.by in shelves:
            pass  # shelf_problems
        elif isinstance(event, PortalOnly):
            out += _portal_event_problems(where, event, portals, s)
        elif event.by in portals:
            out += _portal_crossing_problems(where, event, portals[event.by])
        else:
            out += _unknown(f"{where}.by", event.by, actors, "scanner")
            out += _portal_fields_on_scanner(where, event)
        for field in ("to", "from_", "location"):
            value = getattr(event, field, None)
            if value is not None:
                out += _unknown(f"{where}.{field.rstrip('_')}", value, codes, "location")
        lines = getattr(event, "lines", ())
        for m, line in enumerate(lines):
            out += _unknown(f"{where}.lines.{m}.sku", line.sku, skus, "item")
            if any((o.sku, o.lot) == (line.sku, line.lot) for o in lines[:m]):
                out.append(f"  {where}.lines.{m}: same item and lot as an earlier line; merge them")
        source, dest = getattr(event, "from_", None), getattr(event, "to", None)
        if source is not None and source == dest:
            out.append(f"  {where}: from and to are the same location")
    return out + _shelf_problems(s)


def _shelf_problems(s: Scenario) -> list[str]:
    # Imported here: the shelf checks are written against this module's models.
    from simulators.shelf.scenario_checks import shelf_problems

    return shelf_problems(s)


def _portal_problems(where: str, p: PortalActor, s: Scenario) -> list[str]:
    codes = {loc.code: loc for loc in s.locations}
    out = _unknown(f"{where}.door", p.door, set(codes), "location")
    if p.door in codes and codes[p.door].kind != "dock":
        out.append(f"  {where}.door: {p.door!r} is a {codes[p.door].kind}, not a dock door")
    if p.neighbour is not None:
        out += _unknown(f"{where}.neighbour", p.neighbour, set(codes), "location")
        if p.neighbour == p.door:
            out.append(f"  {where}.neighbour: a door is not its own neighbour")
    if p.profile not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        out.append(f"  {where}.profile: unknown reader profile {p.profile!r} (known: {known})")
    ports = p.outside_ports + p.inside_ports
    if len(set(ports)) != len(ports) or min(ports) < 1:
        out.append(f"  {where}: outside_ports and inside_ports must be distinct ports >= 1")
    others = [q.id for q in s.portals if q.door == p.door and q.id != p.id]
    if others:
        out.append(f"  {where}.door: {p.door!r} already has portal {others[0]!r}")
    return out


def _portal_crossing_problems(where: str, event: Scanned, portal: PortalActor) -> list[str]:
    out: list[str] = []
    if not isinstance(event, Delivery | Shipment):
        out.append(f"  {where}.by: {portal.id!r} is a portal; portals see deliveries and shipments")
        return out
    door_field, door = ("to", event.to) if isinstance(event, Delivery) else ("from", event.from_)
    if door != portal.door:
        out.append(
            f"  {where}.{door_field}: portal {portal.id!r} is at {portal.door!r}, not {door!r}"
        )
    if event.noise:
        out.append(f"  {where}.noise: scanner noise on a portal event (set noise on the portal)")
    return out + _rfid_lines(where, event.lines)


def _portal_event_problems(
    where: str, event: PortalOnly, portals: dict[str, PortalActor], s: Scenario
) -> list[str]:
    portal = portals.get(event.by)
    if portal is None:
        return [f"  {where}.by: unknown portal {event.by!r}"]
    out: list[str] = []
    if isinstance(event, NeighbourTraffic):
        if portal.neighbour is None:
            out.append(f"  {where}.by: portal {portal.id!r} has no neighbour door")
        elif any(p.door == portal.neighbour for p in s.portals):
            out.append(
                f"  {where}: {portal.neighbour!r} has a portal of its own; make this a "
                "delivery or shipment by it"
            )
    if not isinstance(event, ReaderFault):
        out += _rfid_lines(where, event.lines)
    return out


def _rfid_lines(where: str, lines: tuple[Line, ...]) -> list[str]:
    out: list[str] = []
    for m, line in enumerate(lines):
        if line.lot is not None:
            out.append(f"  {where}.lines.{m}.lot: RFID lines carry no lot (item-level SGTIN tags)")
        if line.expiry is not None:
            out.append(f"  {where}.lines.{m}.expiry: RFID lines carry no expiry")
    return out


def _portal_fields_on_scanner(where: str, event: Scanned) -> list[str]:
    if isinstance(event, Delivery | Shipment):
        return [
            f"  {where}.{name}: only for loads through a portal"
            for name in ("stand_s", "speed_m_per_s")
            if name in event.model_fields_set
        ]
    return []


def _unknown(path: str, value: str, known: set[str], what: str) -> list[str]:
    return [] if value in known else [f"  {path}: unknown {what} {value!r}"]


def _duplicates(path: str, names: list[str]) -> list[str]:
    return [
        f"  {path}: {name!r} is defined twice"
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
