"""The stock that is physically at the site, replayed from a scenario's events.

This knows nothing about scanners or portals: it is what a perfect auditor would count (a
delivery through a portal arrives at the portal's door, a shipment leaves from it). The demo
compares the ledger's balances at physical locations with `Stock.balances()` after a run.
"""

from dataclasses import dataclass
from datetime import date

from simulators.scenario import (
    Adjustment,
    Count,
    Delivery,
    Event,
    Line,
    Pick,
    PortalOnly,
    Putaway,
    Return,
    Scenario,
    ScenarioError,
    ShelfOnly,
    Shipment,
    Shrink,
    Transfer,
)

# (sku, location, lot)
Key = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class Balance:
    sku: str
    gtin: str
    location: str
    lot: str | None
    qty: int


@dataclass(frozen=True, slots=True)
class FlaggedMove:
    """A move that physically happened but that its sensor could only flag, not count (an item
    put in another item's shelf lane): it waits in review, so the ledger lacks it."""

    sku: str
    from_location: str | None  # None: from outside the site (a return)
    to_location: str
    qty: int
    lot: str | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """One item and lot known at a location (qty may be 0 once it has all gone)."""

    sku: str
    lot: str | None
    expiry: date | None
    qty: int


class Stock:
    def __init__(self, scenario: Scenario) -> None:
        self._gtins = {i.sku: i.gtin for i in scenario.items}
        self._qty: dict[Key, int] = {}
        self._expiry: dict[tuple[str, str | None], date] = {}

    def apply(self, index: int, event: Event) -> None:
        """Move the stock an event moves; `index` is the event's place in the file, for errors."""
        take, put = ends(event)
        for m, line in enumerate(getattr(event, "lines", ())):
            if line.expiry is not None:
                self._expiry[(line.sku, line.lot)] = line.expiry
            if take is not None:
                self._take(f"events.{index}.lines.{m}", take, line)
            if put is not None:
                self._add((line.sku, put, line.lot), line.qty)

    def held_at(self, location: str) -> list[Held]:
        """Every item and lot that has been at `location`, in a stable order."""
        keys = sorted((k for k in self._qty if k[1] == location), key=_sort_key)
        return [
            Held(sku, lot, self._expiry.get((sku, lot)), self._qty[(sku, loc, lot)])
            for sku, loc, lot in keys
        ]

    def expiry(self, sku: str, lot: str | None) -> date | None:
        return self._expiry.get((sku, lot))

    def balances(self) -> tuple[Balance, ...]:
        return tuple(
            Balance(sku, self._gtins[sku], loc, lot, qty)
            for (sku, loc, lot), qty in sorted(self._qty.items(), key=lambda kv: _sort_key(kv[0]))
            if qty != 0
        )

    def _take(self, where: str, location: str, line: Line) -> None:
        key = (line.sku, location, line.lot)
        have = self._qty.get(key, 0)
        if have < line.qty:
            lot = f" lot {line.lot}" if line.lot else ""
            raise ScenarioError(
                f"{where}: takes {line.qty} x {line.sku}{lot} from {location}, "
                f"but only {have} are there then"
            )
        self._add(key, -line.qty)

    def _add(self, key: Key, qty: int) -> None:
        self._qty[key] = self._qty.get(key, 0) + qty


def _sort_key(key: Key) -> tuple[str, str, str]:
    return key[0], key[1], key[2] or ""


def ends(event: Event) -> tuple[str | None, str | None]:
    """(location stock leaves, location stock arrives at); None = outside the site or no move."""
    match event:
        case Delivery() | Return():
            return None, event.to
        case Putaway() | Transfer():
            return event.from_, event.to
        case Pick() | Shipment():
            return event.from_, None
        case Shrink():
            return event.location, None
        case Adjustment():
            return (None, event.location) if event.direction == "in" else (event.location, None)
        case Count():
            return None, None
        case _ if isinstance(event, PortalOnly | ShelfOnly):
            return None, None  # loads that do not cross, hands, knocks, device faults
    raise AssertionError(event)


def touched(event: Event) -> set[str]:
    """The locations an event touches."""
    if isinstance(event, Count):
        return {event.location}
    return {loc for loc in ends(event) if loc is not None}
