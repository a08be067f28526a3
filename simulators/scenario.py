"""Scenario files: what physically happens at a simulated site, and when.

A scenario names the site, its items, locations and actors (scanners today; RFID portals and
shelves later) and a timeline of physical events. Actors turn the events they witness into what
their device emits (see `simulators.scan_plan`); `simulators.ground_truth` replays the same
events to know the stock that is really there. The two never share state.

Times are seconds from the start of the run at speed 1.
"""

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulators.barcodes import gtin_ok
from stockwire.config import describe, read_toml
from stockwire.errors import ConfigError
from stockwire.names import Gtin14, Ident, Lot, Sku

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
Noise = Literal["double-scan", "garbage"]


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


class Delivery(_Scanned):
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


class Shipment(_Scanned):
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


Event = Annotated[
    Delivery | Putaway | Transfer | Pick | Shipment | Return | Adjustment | Count | Shrink,
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
    events: tuple[Event, ...] = ()

    def scanner(self, scanner_id: str) -> ScannerActor:
        for actor in self.scanners:
            if actor.id == scanner_id:
                return actor
        raise ScenarioError(f"no scanner {scanner_id!r} in the scenario")

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
    out = _duplicates("items", [i.sku for i in s.items])
    out += _duplicates("locations", [loc.code for loc in s.locations])
    out += _duplicates("scanners", [a.id for a in s.scanners])
    out += [
        f"  items.{n}.gtin: EAN-13 labels need a GTIN starting with 0"
        for n, i in enumerate(s.items)
        if i.label == "ean13" and not i.gtin.startswith("0")
    ]
    for n, actor in enumerate(s.scanners):
        out += _unknown(f"scanners.{n}.home", actor.home, codes, "location")
    for n, event in enumerate(s.events):
        where = f"events.{n}"
        if not isinstance(event, Shrink):
            out += _unknown(f"{where}.by", event.by, actors, "scanner")
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
    return out


def _unknown(path: str, value: str, known: set[str], what: str) -> list[str]:
    return [] if value in known else [f"  {path}: unknown {what} {value!r}"]


def _duplicates(path: str, names: list[str]) -> list[str]:
    return [
        f"  {path}: {name!r} is defined twice"
        for name in sorted(set(names))
        if names.count(name) > 1
    ]
