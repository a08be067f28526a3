"""Ledger invariants under hypothesis-made operation sequences, on SQLite and PostgreSQL.

Each example posts batches of receipts, picks, shipments, putaways, transfers, returns,
adjustments and counts (random items, locations, lots, quantities; event times out of order,
late and back-dated, in several UTC offsets; a third with EPCs; lots with and without an
expiry, expired ones among them; a serial-tracked item with serials, a few miscounted or in
the wrong place; a lot-tracked item with a shelf life), the same ids again (same body:
duplicate; another body: conflict), low-confidence ones that wait in review and are approved or
voided (or decided twice), and reversals (some of reversals, or twice), against a real Ledger
with a set commit clock. The pure-Python ledger in ledger_model.py does the same; then:

- every posting's outcomes and movements are the model's;
- per item and lot the balances over all locations (virtual ones too) sum to zero;
- every balances row equals the sum of its movements;
- every EPC is where its last move took it, and where and in which state the model has it;
- every serial is in one place, where its last move took it, and where the model has it;
- today's balances, and the as-of balances at every event time seen, at every commit time
  (known_at) and at pairs of both, equal the model's replay of its movements.

Examples share one database (one per backend, made for the test) and keep apart by their items
(`E<n>-...`) and EPCs; derandomized, so CI runs the same sequences every time.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.errors import StateError
from aggregator.ledger import Ledger
from aggregator.ledger.as_of import AsOf, stock_as_of
from aggregator.ledger.bounds import Bounds
from aggregator.ledger.reads import StockFilter
from aggregator.schema import (
    balances,
    epc_moves,
    epcs,
    items,
    locations,
    movements,
    serial_moves,
    serials,
)
from aggregator.writer import Writer
from stockwire.events import Movement
from stockwire.ids import uuid7
from stockwire.txn import StockTransaction, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import EDGE, SITE, audit_entry, batch
from tests.integration.ledger_model import Key, Model, Move

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer

K = TxnKind
BASE = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
OPS_MAX = 12
STEP = timedelta(minutes=10)  # between two operations' commits
PLACES = ("A", "B", "C")
OFFSETS = tuple(timezone(timedelta(minutes=m)) for m in (0, 120, -300, 330))
ROWS_MAX = 100_000
EPCS_PER_EXAMPLE = 5
SERIALS_PER_EXAMPLE = 4
# Items by index: 0-2 made on first sight; these two have master data.
SERIAL_ITEM, LOT_ITEM = 3, 4
SHELF_LIFE_DAYS = 30
# Every event time falls on 2026-11-29 in every offset: before it, that day, later.
EXPIRIES = (date(2026, 11, 28), date(2026, 11, 29), date(2027, 1, 31))
_examples = itertools.count()


@dataclass(frozen=True, slots=True)
class New:
    """A new transaction; `item` and `minute` are made concrete per example."""

    kind: TxnKind
    item: int
    lot: str | None
    qty: int
    src: str | None
    dst: str | None
    minute: int  # event time: BASE + minute, anywhere among the commits
    offset: int  # which of OFFSETS the edge wrote it in
    doubtful: bool  # confidence below review_confidence_min
    epcs: tuple[int, ...] = ()  # which of the example's EPCS_PER_EXAMPLE tags (qty: as many)
    serials: tuple[int, ...] = ()  # which of SERIALS_PER_EXAMPLE serial numbers
    expiry: int | None = None  # which of EXPIRIES


@dataclass(frozen=True, slots=True)
class Again:
    """An id posted before (the pick-th made so far): the same body, or another one."""

    pick: int
    same: bool


@dataclass(frozen=True, slots=True)
class Post:
    txns: tuple[New | Again, ...]


@dataclass(frozen=True, slots=True)
class Reverse:
    pick: int  # which movement so far


@dataclass(frozen=True, slots=True)
class Decide:
    pick: int  # which txn that ever went to review
    approve: bool


Op = Post | Reverse | Decide


@st.composite
def new_txns(draw: st.DrawFn) -> New:
    kind = draw(st.sampled_from(list(TxnKind)))
    here = draw(st.sampled_from(PLACES))
    elsewhere = st.sampled_from([p for p in (*PLACES, "@transit") if p != here])

    def mostly_here(*virtual: str) -> str:
        """Here, or now and then a virtual location (a side the ledger may fill the same)."""
        return draw(st.sampled_from([here, here, here, here, *virtual]))

    src: str | None = None
    dst: str | None = None
    match kind:
        case K.RECEIPT:
            src = draw(st.sampled_from([None, "@supplier", "@production", "@nowhere"]))
            dst = mostly_here("@supplier")
        case K.RETURN:
            src, dst = draw(st.sampled_from([None, "@customer"])), mostly_here("@customer")
        case K.SHIPMENT | K.PICK:
            src, dst = mostly_here("@customer", "@transit"), draw(st.none() | elsewhere)
        case K.PUTAWAY | K.TRANSFER:
            src, dst = here, draw(elsewhere)
        case K.ADJUSTMENT:
            side = mostly_here("@loss")
            src, dst = (side, None) if draw(st.booleans()) else (None, side)
        case K.COUNT:
            dst = mostly_here("@loss", "@transit")
    if src is not None and src == dst:  # the model refuses these; keep the side it needs
        src, dst = (src, None) if kind in (K.PICK, K.SHIPMENT) else (None, dst)
    item = draw(st.integers(0, LOT_ITEM))
    # EPCs on items without master data only: a txn the tracking rules refuse moves none.
    tagged = item < SERIAL_ITEM and draw(st.integers(0, 2)) == 0
    epcs = draw(st.lists(st.integers(0, EPCS_PER_EXAMPLE - 1), min_size=1, max_size=3))
    qty = draw(st.integers(0 if kind is K.COUNT else 1, 12))
    if tagged and kind is not K.COUNT:
        qty = len(epcs)  # item-level tags: one unit each (an EPC listed twice: review)
    serials: tuple[int, ...] = ()
    if item == SERIAL_ITEM and kind is not K.COUNT:
        serials = tuple(
            draw(st.lists(st.integers(0, SERIALS_PER_EXAMPLE - 1), min_size=1, max_size=3))
        )
        qty = len(serials) + draw(st.sampled_from([0, 0, 0, 0, 0, 1]))  # now and then miscounted
    lot = draw(st.sampled_from([None, "L1", "L2"]))
    expiry = draw(st.sampled_from([None, None, 0, 1, 2])) if lot is not None else None
    return New(
        kind=kind,
        item=item,
        lot=lot,
        qty=qty,
        src=src,
        dst=dst,
        minute=draw(st.integers(0, 10 * (OPS_MAX + 1))),
        offset=draw(st.integers(0, len(OFFSETS) - 1)),
        doubtful=draw(st.integers(0, 4)) == 0,
        epcs=tuple(epcs) if tagged else (),
        serials=serials,
        expiry=expiry,
    )


def operations() -> st.SearchStrategy[list[Op]]:
    again = st.builds(Again, pick=st.integers(0, 50), same=st.booleans())
    more = st.lists(st.one_of(new_txns(), new_txns(), again), max_size=2)
    post = st.builds(lambda first, rest: Post((first, *rest)), new_txns(), more)
    reverse = st.builds(Reverse, pick=st.integers(0, 50))
    decide = st.builds(Decide, pick=st.integers(0, 20), approve=st.booleans())
    op: st.SearchStrategy[Op] = st.one_of(post, post, post, post, reverse, decide)
    rest = st.lists(op, min_size=1, max_size=OPS_MAX - 1)
    return st.builds(lambda first, then: [first, *then], post, rest)


@dataclass
class Clock:
    now: datetime = BASE

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Run:
    """One example's sequence against the ledger and the model side by side."""

    ledger: Ledger
    clock: Clock
    number: int  # of the example: its items are E<number>-I<n>, its EPCs 3034<number>...
    model: Model
    made: list[StockTransaction]
    ids: list[int]  # the ledger's movement id of each model.moves entry

    @property
    def prefix(self) -> str:
        return f"E{self.number}"

    @property
    def epc_prefix(self) -> str:
        return f"3034{self.number:08X}"

    def txn(self, spec: New | Again) -> StockTransaction | None:
        if isinstance(spec, Again):
            if not self.made:
                return None
            before = self.made[spec.pick % len(self.made)]
            return before if spec.same else before.model_copy(update={"qty": before.qty + 1})
        at = (BASE + timedelta(minutes=spec.minute)).astimezone(OFFSETS[spec.offset])
        made = StockTransaction(
            id=uuid7(),
            edge=EDGE,
            device="dev1",
            seq=len(self.made),
            kind=spec.kind,
            sku=f"{self.prefix}-I{spec.item}",
            lot=spec.lot,
            qty=spec.qty,
            from_location=spec.src,
            to_location=spec.dst,
            occurred_at=at,
            recorded_at=at,
            confidence=0.2 if spec.doubtful else 1.0,
            epcs=tuple(f"{self.epc_prefix}{k:012X}" for k in spec.epcs),
            serials=tuple(f"SN{k}" for k in spec.serials),
            expiry=None if spec.expiry is None else EXPIRIES[spec.expiry],
        )
        self.made.append(made)
        return made

    async def step(self, op: Op) -> None:
        before = len(self.model.moves)
        now = self.clock.now
        match op:
            case Post(specs):
                txns = [t for t in (self.txn(s) for s in specs) if t is not None]
                if not txns:
                    return
                expected = self.model.post(txns, now)
                posting = await self.ledger.post(batch(*txns))
                assert [r.status for r in posting.results] == expected
                self.took(posting.movements, before)
            case Reverse(pick) if self.model.moves:
                index = pick % len(self.model.moves)
                if not self.model.reverse(index, now):
                    with pytest.raises(StateError):
                        await self.ledger.reverse_movement(self.ids[index], audit=audit_entry())
                    return
                posting = await self.ledger.reverse_movement(self.ids[index], audit=audit_entry())
                self.took(posting.movements, before)
            case Decide(pick, approve) if self.model.held:
                await self.decide(self.model.held[pick % len(self.model.held)], approve, before)

    async def decide(self, txn_id: UUID, approve: bool, before: int) -> None:
        if not self.model.decide(txn_id, approve, self.clock.now):
            with pytest.raises(StateError):
                await (self.ledger.approve if approve else self.ledger.void)(
                    txn_id, audit=audit_entry()
                )
            return
        if approve:
            self.took((await self.ledger.approve(txn_id, audit=audit_entry())).movements, before)
        else:
            await self.ledger.void(txn_id, audit=audit_entry())

    def took(self, moved: Sequence[Movement], before: int) -> None:
        """The ledger's new movements are the model's, in order; remember their ids."""
        expected = self.model.moves[before:]
        assert [_seen(m) for m in moved] == [_moved(m, self.ids) for m in expected]
        self.ids.extend(m.id for m in moved)


def _seen(m: Movement) -> tuple[object, ...]:
    places = (m.from_location, m.to_location)
    return (m.sku, m.lot or "", *places, m.qty, m.occurred_at, m.committed_at, m.reverses)


def _moved(m: Move, ids: list[int]) -> tuple[object, ...]:
    reverses = ids[m.reverses] if m.reverses is not None else None
    return (m.sku, m.lot, m.src, m.dst, m.qty, m.occurred_at, m.committed_at, reverses)


async def check_books(engine: AsyncEngine) -> None:
    """The whole database: per item and lot the sum over all locations is zero, and every
    balances row equals the sum of its movements (and no movement sum lacks its row)."""
    inflow = sa.select(
        movements.c.item_id, movements.c.to_location_id.label("place"), movements.c.lot
    ).add_columns(movements.c.qty)
    outflow = sa.select(
        movements.c.item_id, movements.c.from_location_id.label("place"), movements.c.lot
    ).add_columns((-movements.c.qty).label("qty"))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(balances))).all()
        legs = (await conn.execute(sa.union_all(inflow, outflow))).all()
    book = {(r.item_id, r.location_id, r.lot): r.qty for r in rows if r.qty != 0}
    summed: dict[tuple[int, int, str], int] = {}
    for item_id, place, lot, qty in legs:
        summed[(item_id, place, lot)] = summed.get((item_id, place, lot), 0) + qty
    assert book == {k: v for k, v in summed.items() if v != 0}
    per_item: dict[tuple[int, str], int] = {}
    for (item_id, _, lot), qty in book.items():
        per_item[(item_id, lot)] = per_item.get((item_id, lot), 0) + qty
    assert {k: v for k, v in per_item.items() if v != 0} == {}


async def check_epcs(engine: AsyncEngine, run: Run) -> None:
    """Each EPC is where its last move took it (the whole database), and where and in which
    state the model has it (this example's)."""
    last = sa.select(epc_moves.c.epc, epc_moves.c.movement_id, epc_moves.c.to_location_id)
    now = sa.select(epcs.c.epc, locations.c.code, epcs.c.state, epcs.c.location_id).join(
        locations, locations.c.id == epcs.c.location_id
    )
    async with engine.connect() as conn:
        moves = (await conn.execute(last.order_by(epc_moves.c.movement_id))).all()
        places = (await conn.execute(now)).all()
    ended = {epc: to for epc, _, to in moves}  # the last move of each wins
    assert {r.epc: r.location_id for r in places} == ended
    mine = {r.epc: (r.code, r.state) for r in places if r.epc.startswith(run.epc_prefix)}
    assert mine == run.model.epc_states()


async def check_serials(engine: AsyncEngine, run: Run) -> None:
    """Each serial is in one place, where its last move took it (the whole database), and
    where and in which state the model has it (this example's)."""
    last = sa.select(
        serial_moves.c.item_id, serial_moves.c.serial, serial_moves.c.to_location_id
    ).order_by(serial_moves.c.movement_id)
    now = (
        sa.select(serials, items.c.sku, locations.c.code)
        .join(items, items.c.id == serials.c.item_id)
        .join(locations, locations.c.id == serials.c.location_id)
    )
    async with engine.connect() as conn:
        moves = (await conn.execute(last)).all()
        places = (await conn.execute(now)).all()
    ended = {(item_id, serial): to for item_id, serial, to in moves}  # the last move wins
    assert {(r.item_id, r.serial): r.location_id for r in places} == ended
    mine = {
        (r.sku, r.serial): (r.code, r.state) for r in places if r.sku.startswith(f"{run.prefix}-")
    }
    assert mine == run.model.serial_states()


async def add_items(engine: AsyncEngine, run: Run) -> None:
    """The example's items with master data: one serial-tracked, one lot-tracked."""
    tracked = {
        f"{run.prefix}-I{SERIAL_ITEM}": ("serial", None),
        f"{run.prefix}-I{LOT_ITEM}": ("lot", SHELF_LIFE_DAYS),
    }
    rows = [
        {
            "sku": sku,
            "flagged": False,
            "created_at": BASE,
            "tracking": mode,
            "shelf_life_days": days,
        }
        for sku, (mode, days) in tracked.items()
    ]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(items), rows)
    run.model.tracking.update(tracked)


async def balances_now(engine: AsyncEngine, prefix: str) -> dict[Key, int]:
    query = (
        sa.select(items.c.sku, locations.c.code, balances.c.lot, balances.c.qty)
        .join(items, items.c.id == balances.c.item_id)
        .join(locations, locations.c.id == balances.c.location_id)
        .where(balances.c.qty != 0, items.c.sku.startswith(f"{prefix}-"))
    )
    async with engine.connect() as conn:
        return {(r.sku, r.code, r.lot): r.qty for r in await conn.execute(query)}


async def as_of(
    engine: AsyncEngine, prefix: str, at: AsOf, where: StockFilter | None = None
) -> dict[Key, int]:
    where = where or StockFilter(include_virtual=True)
    rows = await stock_as_of(engine, where, at, ROWS_MAX)
    return {
        (r.sku, r.location, r.lot or ""): r.qty
        for r in rows
        if r.sku is not None and r.sku.startswith(f"{prefix}-")
    }


async def check_as_of(engine: AsyncEngine, run: Run, commits: list[datetime]) -> None:
    model, prefix = run.model, run.prefix
    assert await balances_now(engine, prefix) == model.balances()
    events = sorted({t.occurred_at for t in run.made})
    elsewhere = timezone(timedelta(hours=-7))  # the query may name any offset
    for event in events:
        got = await as_of(engine, prefix, AsOf(event=event.astimezone(elsewhere)))
        assert got == model.as_of(event, None), f"as_of {event.isoformat()}"
    for known in commits:
        got = await as_of(engine, prefix, AsOf(known=known))
        assert got == model.as_of(None, known), f"known_at {known.isoformat()}"
    for event, known in zip(events, reversed(commits), strict=False):
        got = await as_of(engine, prefix, AsOf(event, known))
        assert got == model.as_of(event, known), f"{event.isoformat()} / {known.isoformat()}"
    if events:  # the filtered query, per item, at physical locations only
        event = events[len(events) // 2]
        for sku in sorted({t.sku for t in run.made if t.sku is not None}):
            got = await as_of(engine, prefix, AsOf(event=event), StockFilter(sku=sku))
            want = model.as_of(event, None)
            assert got == {k: v for k, v in want.items() if k[0] == sku and k[1] in PLACES}


async def exercise(engine: AsyncEngine, writer: Writer, ops: list[Op]) -> None:
    clock = Clock()
    bounds = Bounds(future_skew=timedelta(days=1), age_max=timedelta(days=30), qty_max=1000)
    ledger = Ledger(writer, site=SITE, clock=clock, bounds=bounds)
    run = Run(ledger, clock, next(_examples), Model(), [], [])
    await add_items(engine, run)
    commits: list[datetime] = []
    for i, op in enumerate(ops):
        clock.now = BASE + STEP * (i + 1)
        commits.append(clock.now)
        await run.step(op)
    await check_books(engine)
    await check_epcs(engine, run)
    await check_serials(engine, run)
    await check_as_of(engine, run, commits)


INVARIANTS = settings(
    deadline=None,
    derandomize=True,  # the same sequences on every run: CI is deterministic
    database=None,
    # One database per backend for all examples (each keeps to its own items), on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(INVARIANTS, max_examples=150)
@given(ops=operations())
async def test_invariants_on_sqlite(engine: AsyncEngine, writer: Writer, ops: list[Op]) -> None:
    await exercise(engine, writer, ops)


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@settings(INVARIANTS, max_examples=50)
@given(ops=operations())
async def test_invariants_on_postgres(engine: AsyncEngine, writer: Writer, ops: list[Op]) -> None:
    await exercise(engine, writer, ops)
