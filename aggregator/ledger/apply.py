"""Turn posted transactions into movements, counts and balance changes: set-oriented, one pass."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from aggregator.ledger import count_tasks, late_counts, reorder, tracking
from aggregator.ledger.bulk import Encoding, add_rows, allocate_ids, encoding, insert_rows
from aggregator.ledger.catalog import (
    Catalog,
    Item,
    Location,
    item_key,
    packs_of,
    resolve_items,
    resolve_locations,
)
from aggregator.ledger.policy import DEFAULT_POLICY, Policy, forbidding
from aggregator.ledger.sides import CUSTOMER, LOSS, SUPPLIER, count_sides, sides
from aggregator.ledger.units import own_qty, uom_qty
from aggregator.schema import balances, count_settlements, counts, movements
from stockwire.events import Movement
from stockwire.txn import StockTransaction, TxnKind

BalanceKey = tuple[int, int, str]  # (item_id, location_id, lot)


@dataclass(frozen=True, slots=True)
class NegativeBalance:
    edge: str  # whose transaction moved it last in this posting
    sku: str | None
    gtin: str | None
    location: str
    lot: str | None
    qty: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    """An item's balance at a physical location (summed over lots) after a posting."""

    item: str  # sku, or the GTIN when the item has no sku
    location: str
    qty: int


@dataclass(frozen=True, slots=True)
class Leg:
    txn: StockTransaction
    item: Item
    src: Location
    dst: Location
    qty: int
    reverses: int | None = None
    # A compensation (late_counts): it happens at the count's time and settles that count.
    at: datetime | None = None
    settles: UUID | None = None

    @property
    def occurred_at(self) -> datetime:
        return self.at if self.at is not None else self.txn.occurred_at


@dataclass(frozen=True, slots=True)
class Applied:
    movements: list[Movement]
    negatives: list[NegativeBalance]
    legs: list[tuple[Leg, int]] = field(default_factory=list)  # (leg, its movement id)
    levels: list[StockLevel] = field(default_factory=list)  # only when asked for
    low_stock: list[reorder.LowStock] = field(default_factory=list)  # raised or cleared


@dataclass(slots=True)
class Plan:
    """What a posting will write, and the transactions it cannot post: `refused` are rejected
    with the reason, `unknown` wait in review with it (items not known with unknown_items =
    review; lot and serial conflicts, aggregator.ledger.tracking)."""

    legs: list[Leg] = field(default_factory=list)
    deltas: defaultdict[BalanceKey, int] = field(default_factory=lambda: defaultdict(int))
    count_rows: list[dict[str, object]] = field(default_factory=list)
    refused: dict[UUID, str] = field(default_factory=dict)
    unknown: dict[UUID, str] = field(default_factory=dict)
    # Open lines of count tasks at the counted balances: counts fill them or wait there.
    tasks: count_tasks.TaskLines = field(default_factory=lambda: count_tasks.TaskLines(None))


def apply_txns(
    conn: sa.Connection,
    txns: Sequence[StockTransaction],
    now: datetime,
    *,
    levels: bool = False,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[Plan, Applied]:
    """Prepare and write in one go (when nothing else is written between)."""
    plan = prepare(conn, txns, now, policy)
    return plan, write(conn, plan, now, levels=levels)


def prepare(
    conn: sa.Connection, txns: Sequence[StockTransaction], now: datetime, policy: Policy
) -> Plan:
    """The movements of txns (in order), with the site's rules applied; writes only the items
    and locations first seen. Balances at locations that forbid negative stock are read
    locked (FOR UPDATE; SQLite's writer holds the database), so no other writer can take
    the same stock before this one commits."""
    plan = Plan()
    if not txns:
        return plan
    catalog = resolve_items(conn, txns, now, create=policy.unknown_items == "create")
    known: list[tuple[StockTransaction, Item]] = []
    for t in txns:
        item = catalog.items.get(item_key(t))
        if item is None:
            plan.unknown[t.id] = _unknown_item(t)
        else:
            known.append((t, item))
    if not known:
        return plan
    named = {t.from_location for t, _ in known} | {t.to_location for t, _ in known}
    codes = {c for c in named if c is not None} | {SUPPLIER, CUSTOMER, LOSS}
    places = resolve_locations(conn, codes, now)
    forbid = forbidding(conn, places.values(), policy.negative_stock)
    qtys = _base_qtys(conn, known, catalog)
    count_keys = [
        ((item.id, places[_counted(t)].id, t.lot or ""), t.occurred_at)
        for t, item in known
        if t.kind is TxnKind.COUNT
    ]
    book = _book(conn, [k for k, _ in count_keys])
    plan.tasks = count_tasks.TaskLines.load(conn, [k for k, _ in count_keys], policy.count_rules)
    book.update(locked(conn, _guarded(known, places, forbid)))
    physical = {p.id for p in places.values() if not p.virtual}
    earliest = min(t.occurred_at for t, _ in known)
    # Most postings: no count since their earliest event, nothing owed (late_counts).
    late = bool(count_keys) or late_counts.taken_since(conn, earliest)
    timeline = late_counts.load(conn, _touched(known, places) if late else [], count_keys, physical)
    tracker = tracking.Tracker.load(conn, known, policy)
    for (txn, item), qty in zip(known, qtys, strict=True):
        if isinstance(qty, str):
            plan.refused[txn.id] = qty
        else:
            _plan_one(plan, txn, item, qty, places, book, forbid, timeline, tracker)
    return plan


def _touched(
    known: list[tuple[StockTransaction, Item]], places: dict[str, Location]
) -> list[tuple[BalanceKey, datetime]]:
    """Every balance the txns may move, with when."""
    touched: list[tuple[BalanceKey, datetime]] = []
    for t, item in known:
        codes = (_counted(t),) if t.kind is TxnKind.COUNT else sides(t)
        touched.extend(((item.id, places[c].id, t.lot or ""), t.occurred_at) for c in codes)
    return touched


def _plan_one(
    plan: Plan,
    txn: StockTransaction,
    item: Item,
    qty: int,
    places: dict[str, Location],
    book: dict[BalanceKey, int],
    forbid: set[int],
    timeline: late_counts.Timeline,
    tracker: tracking.Tracker,
) -> None:
    deltas = plan.deltas
    counted: dict[str, object] | None = None
    if txn.kind is TxnKind.COUNT:
        place = places[_counted(txn)]
        key = (item.id, place.id, txn.lot or "")
        if (why := plan.tasks.hold(txn, key, qty)) is not None:
            plan.unknown[txn.id] = why  # waits in review with its task's line
            return
        have = timeline.book_at(key, txn.occurred_at, book.get(key, 0) + deltas[key])
        if qty == have:
            plan.count_rows.append(_count_row(txn, item, place, qty, have))
            timeline.counted(key, txn.occurred_at, txn.id)
            return
        counted = _count_row(txn, item, place, qty, have)  # its book, before `have` is reused
        src, dst = count_sides(place.code, qty - have)
        leg = Leg(txn, item, places[src], places[dst], abs(qty - have))
    else:
        src, dst = sides(txn)
        leg = Leg(txn, item, places[src], places[dst], qty)
    if forbid and leg.src.id in forbid:
        key = (item.id, leg.src.id, txn.lot or "")
        have = book.get(key, 0) + deltas[key]
        # A late take before a count there is given back at the count (late_counts): net 0.
        late = timeline.owed(key, leg.occurred_at, strictly=counted is not None) is not None
        if have < leg.qty and not late:
            plan.refused[txn.id] = negative_refusal(leg, have)
            return
    if (finding := tracker.check(txn, item, leg.src, leg.dst)) is not None:
        (plan.unknown if finding.review else plan.refused)[txn.id] = finding.reason
        return
    _post_leg(plan, leg, places[LOSS], timeline, counting=counted is not None)
    if counted is not None:  # a count refused above keeps no row: its txn is not kept
        plan.count_rows.append(counted)
        timeline.counted(
            (item.id, places[_counted(txn)].id, txn.lot or ""), txn.occurred_at, txn.id
        )


def _post_leg(
    plan: Plan, leg: Leg, loss: Location, timeline: late_counts.Timeline, *, counting: bool
) -> None:
    """The leg, and after it what it owes counts taken after it (late_counts)."""
    legs = [leg]
    lot = leg.txn.lot or ""
    for place, sign in ((leg.src, -1), (leg.dst, 1)) if timeline.marks else ():
        if place.virtual:
            continue
        key = (leg.item.id, place.id, lot)
        mark = timeline.owed(key, leg.occurred_at, strictly=counting)
        if mark is not None:
            src, dst = (place, loss) if sign > 0 else (loss, place)
            legs.append(Leg(leg.txn, leg.item, src, dst, leg.qty, at=mark.at, settles=mark.txn_id))
    for one in legs:
        move(plan.deltas, one)
        plan.legs.append(one)
        for place, qty in ((one.src, -one.qty), (one.dst, one.qty)) if timeline.watched else ():
            timeline.moved((one.item.id, place.id, lot), one.occurred_at, qty)


def negative_refusal(leg: Leg, have: int) -> str:
    lot = f" lot {leg.txn.lot}" if leg.txn.lot else ""
    return (
        f"negative stock is forbidden at {leg.src.code}: it holds {have} of"
        f" {leg.item.sku or leg.item.gtin}{lot}, the {leg.txn.kind.value} takes {leg.qty}"
    )


def _unknown_item(txn: StockTransaction) -> str:
    named = " / ".join(f"{n} {v}" for n, v in (("sku", txn.sku), ("gtin", txn.gtin)) if v)
    return f"unknown item ({named}): the site reviews items first seen (unknown_items = review)"


def _base_qtys(
    conn: sa.Connection, known: list[tuple[StockTransaction, Item]], catalog: Catalog
) -> list[int | str]:
    """Each txn's quantity in base units, or why it has none. The items' packs by unit are
    read (one query) only if a txn names a unit neither its GTIN nor its base unit is."""
    qtys = [own_qty(t, item, catalog.packs) for t, item in known]
    wanting = [n for n, qty in enumerate(qtys) if qty is None]
    if wanting:
        by_uom = packs_of(conn, (known[n][1].id for n in wanting))
        for n in wanting:
            qtys[n] = uom_qty(*known[n], by_uom)
    return [q for q in qtys if q is not None]  # none left


def _guarded(
    known: list[tuple[StockTransaction, Item]], places: dict[str, Location], forbid: set[int]
) -> list[BalanceKey]:
    """The balances txns may take from at locations that forbid negative stock."""
    if not forbid:
        return []
    keys: set[BalanceKey] = set()
    for t, item in known:
        taken = places[_counted(t) if t.kind is TxnKind.COUNT else sides(t)[0]]
        if taken.id in forbid:
            keys.add((item.id, taken.id, t.lot or ""))
    return sorted(keys)


def locked(conn: sa.Connection, keys: list[BalanceKey]) -> dict[BalanceKey, int]:
    """The balances of `keys`, locked until commit (in key order, as the upsert takes them)."""
    return _book(conn, keys, lock=True)


def write(conn: sa.Connection, plan: Plan, now: datetime, *, levels: bool = False) -> Applied:
    """Write what `prepare` planned, after the transactions' own rows."""
    if plan.count_rows:
        conn.execute(sa.insert(counts), plan.count_rows)
    applied = write_legs(conn, plan.legs, plan.deltas, now, levels=levels)
    settled = [
        {"movement_id": movement_id, "count_txn_id": leg.settles}
        for leg, movement_id in applied.legs
        if leg.settles is not None
    ]
    if settled:
        conn.execute(sa.insert(count_settlements), settled)
    return applied


def _counted(txn: StockTransaction) -> str:
    assert txn.to_location is not None, "a count names the counted location"
    return txn.to_location


def _count_row(
    txn: StockTransaction, item: Item, place: Location, counted: int, book: int
) -> dict[str, object]:
    return {
        "txn_id": txn.id,
        "item_id": item.id,
        "location_id": place.id,
        "lot": txn.lot or "",
        "counted": counted,
        "book": book,
        "variance": counted - book,
        "counted_at": utc(txn.occurred_at),
    }


def move(deltas: defaultdict[BalanceKey, int], leg: Leg) -> None:
    lot = leg.txn.lot or ""
    deltas[(leg.item.id, leg.src.id, lot)] -= leg.qty
    deltas[(leg.item.id, leg.dst.id, lot)] += leg.qty


def _book(
    conn: sa.Connection, keys: list[BalanceKey], *, lock: bool = False
) -> dict[BalanceKey, int]:
    if not keys:
        return {}
    key = (balances.c.item_id, balances.c.location_id, balances.c.lot)
    query = sa.select(balances).where(sa.tuple_(*key).in_(keys))
    if lock:
        query = query.order_by(*key).with_for_update()
    return {(r.item_id, r.location_id, r.lot): r.qty for r in conn.execute(query)}


def write_legs(
    conn: sa.Connection,
    legs: list[Leg],
    deltas: dict[BalanceKey, int],
    now: datetime,
    *,
    levels: bool = False,
) -> Applied:
    if not legs:
        return Applied([], [])
    # Balances first: their rows are what concurrent writers contend for, and a writer must
    # hold those before it waits for the commit-order lock that drawing movement ids takes.
    _add_to_balances(conn, deltas)
    numbered = list(zip(legs, allocate_ids(conn, movements, len(legs)), strict=True))
    enc = encoding(conn)
    at = enc.time(now)
    rows = [_movement_row(leg, movement_id, at, enc) for leg, movement_id in numbered]
    insert_rows(conn, movements, _MOVEMENT_COLUMNS, rows)
    tracking.record(conn, numbered, now)
    events = [_event(leg, movement_id, now) for leg, movement_id in numbered]
    after = _levels(conn, legs) if levels else []
    low = reorder.changes(conn, (g.item.id for g in legs if g.item.reorder_point is not None), now)
    at_places = {
        (g.item.id, place.id)
        for g in legs
        if g.item.located_points
        for place in (g.src, g.dst)
        if not place.virtual
    }
    low += reorder.location_changes(conn, at_places, now)
    return Applied(events, _negatives(conn, legs, deltas), numbered, after, low)


_MOVEMENT_COLUMNS = (
    "id",
    "txn_id",
    "item_id",
    "lot",
    "from_location_id",
    "to_location_id",
    "qty",
    "occurred_at",
    "committed_at",
    "reverses",
)


def _movement_row(leg: Leg, movement_id: int, at: object, enc: Encoding) -> tuple[object, ...]:
    return (
        movement_id,
        enc.uuid(leg.txn.id),
        leg.item.id,
        leg.txn.lot or "",
        leg.src.id,
        leg.dst.id,
        leg.qty,
        enc.time(leg.occurred_at),
        at,
        leg.reverses,
    )


def _event(leg: Leg, movement_id: int, now: datetime) -> Movement:
    # Built from validated transactions and committed rows: skip re-validation on the hot path.
    return Movement.model_construct(
        id=movement_id,
        txn_id=leg.txn.id,
        edge=leg.txn.edge,
        seq=leg.txn.seq,
        kind=leg.txn.kind,
        sku=leg.item.sku,
        gtin=leg.item.gtin,
        lot=leg.txn.lot,
        qty=leg.qty,
        from_location=leg.src.code,
        to_location=leg.dst.code,
        occurred_at=leg.occurred_at,
        committed_at=now,
        reverses=leg.reverses,
        load_id=leg.txn.load_id,
    )


def _add_to_balances(conn: sa.Connection, deltas: dict[BalanceKey, int]) -> None:
    """One upsert per key, in key order (so concurrent writers lock rows in the same order)."""
    rows = [(*key, qty) for key, qty in sorted(deltas.items()) if qty != 0]
    add_rows(conn, balances, ("item_id", "location_id", "lot"), "qty", rows)


def _negatives(
    conn: sa.Connection, legs: list[Leg], deltas: dict[BalanceKey, int]
) -> list[NegativeBalance]:
    physical = {p.id: p for leg in legs for p in (leg.src, leg.dst) if not p.virtual}
    touched = [k for k, qty in deltas.items() if qty < 0 and k[1] in physical]
    if not touched:
        return []
    query = sa.select(balances).where(
        sa.tuple_(balances.c.item_id, balances.c.location_id, balances.c.lot).in_(touched),
        balances.c.qty < 0,
    )
    item_of = {leg.item.id: leg.item for leg in legs}
    edge_of = {(leg.item.id, leg.src.id, leg.txn.lot or ""): leg.txn.edge for leg in legs}
    return [
        NegativeBalance(
            edge_of.get((r.item_id, r.location_id, r.lot), legs[-1].txn.edge),
            item_of[r.item_id].sku,
            item_of[r.item_id].gtin,
            physical[r.location_id].code,
            r.lot or None,
            r.qty,
        )
        for r in conn.execute(query)
    ]


def _levels(conn: sa.Connection, legs: list[Leg]) -> list[StockLevel]:
    """One query for the whole posting: the balance (over lots) of each item at each physical
    location its movements touched, as this transaction leaves it."""
    physical = {p.id: p for leg in legs for p in (leg.src, leg.dst) if not p.virtual}
    pairs = sorted(
        {(leg.item.id, p.id) for leg in legs for p in (leg.src, leg.dst) if not p.virtual}
    )
    if not pairs:
        return []
    query = (
        sa.select(balances.c.item_id, balances.c.location_id, sa.func.sum(balances.c.qty))
        .where(sa.tuple_(balances.c.item_id, balances.c.location_id).in_(pairs))
        .group_by(balances.c.item_id, balances.c.location_id)
    )
    item_of = {leg.item.id: leg.item for leg in legs}
    return [
        StockLevel(_item_name(item_of[item_id]), physical[place_id].code, int(qty))
        for item_id, place_id, qty in conn.execute(query)
    ]


def _item_name(item: Item) -> str:
    name = item.sku or item.gtin
    assert name is not None, "an item has a sku or a GTIN"
    return name


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
