"""Lots and serials in the posting path: each item's tracking rules, checked leg by leg in
posting order against the lots and serial places the ledger holds (as the legs before it in
the same posting leave them), read with one query each per posting.

- violations (the site's `tracking_violations`: rejected with the reason, or review): a
  lot-tracked item moved without a lot; a receipt of a lot that expired before the day it
  happened (the edge's own date of occurred_at); a serial-tracked item whose qty is not its
  number of serials; a serial listed twice (always rejected: the body contradicts itself);
- conflicts (always review, so a person decides): a lot named with an expiry other than the
  one on record (a lot's expiry never changes once recorded); a serial received while in
  stock at a physical location, or moved from a physical location it is not at.

A lot is recorded when first moved, with the expiry given, else (when the item has a shelf
life) the day it happened + shelf_life_days. Serials are keyed (item, serial): serial
numbers are unique per maker, not across them. A person's approval posts whatever the rules
said (Policy.approved); a reversal moves the serials back.
"""

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from uuid import UUID

import sqlalchemy as sa

from aggregator.ledger.catalog import Item, Location
from aggregator.ledger.policy import Policy
from aggregator.schema import locations, lots, serial_moves, serials
from stockwire.txn import StockTransaction, TxnKind

UnitKey = tuple[int, str]  # (item id, lot) or (item id, serial)
KEYS_PER_QUERY_MAX = 5000  # (item, serial) pairs per IN (...): two parameters each
REASON_NAMED_MAX = 3
REASON_CHARS_MAX = 500  # transactions.review_reason


@dataclass(frozen=True, slots=True)
class Finding:
    reason: str
    review: bool  # else rejected


class Moved(Protocol):
    """A leg of a posting (aggregator.ledger.apply.Leg)."""

    @property
    def txn(self) -> StockTransaction: ...
    @property
    def item(self) -> Item: ...
    @property
    def src(self) -> Location: ...
    @property
    def dst(self) -> Location: ...
    @property
    def settles(self) -> UUID | None: ...


class Tracker:
    """The lots and serial places of one posting, kept up to date as its legs are checked."""

    def __init__(
        self, expiry: dict[UnitKey, date | None], at: dict[UnitKey, str], policy: Policy
    ) -> None:
        self._expiry = expiry
        self._at = at
        self._policy = policy

    @classmethod
    def load(
        cls, conn: sa.Connection, known: Sequence[tuple[StockTransaction, Item]], policy: Policy
    ) -> "Tracker":
        lot_keys: set[UnitKey] = set()
        unit_keys: set[UnitKey] = set()
        for t, item in known:
            if t.lot is not None:
                lot_keys.add((item.id, t.lot))
            if t.serials and t.kind is not TxnKind.COUNT:
                unit_keys.update((item.id, s) for s in t.serials)
        return cls(_lots(conn, lot_keys), held(conn, unit_keys), policy)

    def check(
        self, txn: StockTransaction, item: Item, src: Location, dst: Location
    ) -> Finding | None:
        """Why this leg cannot post as it is, or None (and the leg is booked)."""
        if txn.lot is None and not txn.serials and item.tracking == "none":
            return None  # most legs: nothing to check or book
        if not self._policy.approved:
            if (why := _violation(txn, item, self._expiry)) is not None:
                return Finding(why, self._policy.tracking_violations == "review")
            if (why := self._conflict(txn, item, src)) is not None:
                return Finding(why, review=True)
        if txn.lot is not None:
            self._expiry.setdefault((item.id, txn.lot), first_expiry(txn, item))
        if moves_serials(txn):
            self._at.update(((item.id, s), dst.code) for s in txn.serials)
        return None

    def _conflict(self, txn: StockTransaction, item: Item, src: Location) -> str | None:
        key = (item.id, txn.lot or "")
        if txn.lot is not None and txn.expiry is not None and key in self._expiry:
            recorded = self._expiry[key]
            if recorded != txn.expiry:
                on_record = recorded.isoformat() if recorded else "no expiry"
                return (
                    f"lot {txn.lot} of {_name(item)} has {on_record} on record; this"
                    f" {txn.kind.value} names expiry {txn.expiry.isoformat()}"
                )
        if not moves_serials(txn):
            return None
        wrong = [(s, at) for s in txn.serials if _misplaced(src, at := self._at.get((item.id, s)))]
        return _serial_reason(src, wrong) if wrong else None


def moves_serials(txn: StockTransaction) -> bool:
    """A count keeps its serials in the body but moves none (it moves the variance)."""
    return bool(txn.serials) and txn.kind is not TxnKind.COUNT


def first_expiry(txn: StockTransaction, item: Item) -> date | None:
    if txn.expiry is not None:
        return txn.expiry
    if item.shelf_life_days is None:
        return None
    return txn.occurred_at.date() + timedelta(days=item.shelf_life_days)


def _violation(txn: StockTransaction, item: Item, expiry: dict[UnitKey, date | None]) -> str | None:
    if item.tracking == "lot" and txn.lot is None:
        return f"{_name(item)} is lot-tracked: the {txn.kind.value} names no lot"
    if len(set(txn.serials)) != len(txn.serials):
        twice = sorted(s for s, n in Counter(txn.serials).items() if n > 1)
        return f"serial(s) listed twice: {', '.join(twice[:REASON_NAMED_MAX])}"
    counted = item.tracking == "serial" and txn.kind is not TxnKind.COUNT
    if counted and txn.qty != len(txn.serials):
        return (
            f"{_name(item)} is serial-tracked: qty {txn.qty} but {len(txn.serials)}"
            " serial(s); each serial is one unit"
        )
    if txn.kind is TxnKind.RECEIPT and txn.lot is not None:
        known = expiry.get((item.id, txn.lot))
        until = txn.expiry or known
        day = txn.occurred_at.date()
        if until is not None and until < day:
            return f"lot {txn.lot} of {_name(item)} expired on {until.isoformat()}, before {day}"
    return None


def _misplaced(src: Location, at: str | None) -> bool:
    """From a virtual location (a receipt, return, found stock) a serial must not be in stock;
    from a physical one it must be there."""
    if src.virtual:
        return at is not None and not at.startswith("@")
    return at != src.code


def _serial_reason(src: Location, wrong: Sequence[tuple[str, str | None]]) -> str:
    shown = ", ".join(f"{s} {'at ' + at if at else 'never received'}" for s, at in wrong[:3])
    more = len(wrong) - REASON_NAMED_MAX
    tail = f" and {more} more" if more > 0 else ""
    if src.virtual:
        reason = f"serial(s) already in stock (from {src.code} they would be in two places): "
    else:
        reason = f"serial(s) not at {src.code}: "
    reason += shown + tail
    return reason if len(reason) <= REASON_CHARS_MAX else reason[: REASON_CHARS_MAX - 3] + "..."


def _name(item: Item) -> str:
    return f"sku {item.sku}" if item.sku else f"gtin {item.gtin}"


def _lots(conn: sa.Connection, keys: set[UnitKey]) -> dict[UnitKey, date | None]:
    found: dict[UnitKey, date | None] = {}
    for chunk in _chunks(sorted(keys)):
        query = sa.select(lots.c.item_id, lots.c.lot, lots.c.expiry).where(
            sa.tuple_(lots.c.item_id, lots.c.lot).in_(chunk)
        )
        found.update(((r.item_id, r.lot), r.expiry) for r in conn.execute(query))
    return found


def held(conn: sa.Connection, keys: Iterable[UnitKey]) -> dict[UnitKey, str]:
    """Where the ledger holds each unit (-> location code); locked on PostgreSQL."""
    at: dict[UnitKey, str] = {}
    for chunk in _chunks(sorted(set(keys))):
        query = (
            sa.select(serials.c.item_id, serials.c.serial, locations.c.code)
            .join(locations, locations.c.id == serials.c.location_id)
            .where(sa.tuple_(serials.c.item_id, serials.c.serial).in_(chunk))
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=serials)
        at.update(((r.item_id, r.serial), r.code) for r in conn.execute(query))
    return at


def record(conn: sa.Connection, legs: Sequence[tuple[Moved, int]], now: datetime) -> None:
    """The lots first seen in `legs` (leg, movement id), and the moves of their serials."""
    lot_rows: dict[UnitKey, dict[str, object]] = {}
    tagged: list[tuple[Moved, int]] = []
    for leg, mid in legs:
        txn = leg.txn
        if txn.serials and txn.kind is not TxnKind.COUNT and leg.settles is None:
            tagged.append((leg, mid))  # a count's compensation (late_counts) moves no unit
        if txn.lot is not None and (leg.item.id, txn.lot) not in lot_rows:
            lot_rows[(leg.item.id, txn.lot)] = {
                "item_id": leg.item.id,
                "lot": txn.lot,
                "expiry": first_expiry(txn, leg.item),
                "first_seen_at": txn.occurred_at,
                "txn_id": txn.id,
            }
    if lot_rows:
        # A new lot is inserted: a replica that recorded it meanwhile (maybe with another
        # expiry) makes this posting retry, and the retry sees it.
        known = _lots(conn, set(lot_rows))
        rows = [lot_rows[k] for k in sorted(lot_rows) if k not in known]
        if rows:
            conn.execute(sa.insert(lots), rows)
    _record_serials(conn, tagged, now)


def _record_serials(conn: sa.Connection, legs: Sequence[tuple[Moved, int]], now: datetime) -> None:
    if not legs:
        return
    moves: list[dict[str, object]] = []
    last: dict[UnitKey, dict[str, object]] = {}
    for leg, mid in legs:
        state = "departed" if leg.dst.virtual else "in_stock"
        for s in dict.fromkeys(leg.txn.serials):  # each once (listed twice: approved so)
            moves.append(
                {
                    "item_id": leg.item.id,
                    "serial": s,
                    "movement_id": mid,
                    "txn_id": leg.txn.id,
                    "from_location_id": leg.src.id,
                    "to_location_id": leg.dst.id,
                    "occurred_at": leg.txn.occurred_at,
                    "committed_at": now,
                }
            )
            last[(leg.item.id, s)] = {
                "k_item": leg.item.id,
                "k_serial": s,
                "location_id": leg.dst.id,
                "state": state,
                "txn_id": leg.txn.id,
                "movement_id": mid,
                "updated_at": now,
            }
    conn.execute(sa.insert(serial_moves), moves)
    known = held(conn, last)
    # A new unit is inserted: a replica that placed it meanwhile makes this posting retry.
    new = [_new_row(row) for key, row in sorted(last.items()) if key not in known]
    if new:
        conn.execute(sa.insert(serials), new)
    moved = [row for key, row in sorted(last.items()) if key in known]
    if moved:
        conn.execute(_MOVE_UNIT, moved)


def _new_row(row: dict[str, object]) -> dict[str, object]:
    out = {k: v for k, v in row.items() if not k.startswith("k_")}
    return {"item_id": row["k_item"], "serial": row["k_serial"], **out}


# Executed with rows of the other columns: SQLAlchemy sets those.
_MOVE_UNIT = sa.update(serials).where(
    serials.c.item_id == sa.bindparam("k_item"),
    serials.c.serial == sa.bindparam("k_serial"),
)


def _chunks(keys: list[UnitKey]) -> Iterator[list[UnitKey]]:
    for start in range(0, len(keys), KEYS_PER_QUERY_MAX):
        yield keys[start : start + KEYS_PER_QUERY_MAX]
