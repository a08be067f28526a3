"""Counts by event time (aggregator/ledger/late_counts.py), on SQLite and PostgreSQL: a count's
book is the balance as of when it was taken, and a movement arriving late with an event time
before a posted count is followed by a compensation at the count's time, linked to it."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger
from aggregator.ledger.as_of import AsOf, stock_as_of
from aggregator.ledger.reads import StockFilter
from aggregator.schema import count_settlements, counts, movements
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import audit_entry, batch, stock, txn

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)  # when the count is taken


def at(hours: float) -> dict[str, datetime]:
    when = T + timedelta(hours=hours)
    return {"occurred_at": when, "recorded_at": when}


async def book_at(engine: AsyncEngine, when: datetime) -> int:
    rows = await stock_as_of(engine, StockFilter(location="A-1"), AsOf(event=when), 10)
    return sum(r.qty for r in rows)


async def count_row(engine: AsyncEngine) -> tuple[int, int, int]:
    """(counted, book, variance) of the one count."""
    async with engine.connect() as conn:
        query = sa.select(counts.c.counted, counts.c.book, counts.c.variance)
        r = (await conn.execute(query)).one()
    return (r.counted, r.book, r.variance)


async def test_a_count_is_booked_as_of_when_it_was_taken(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    """A pick after the count, posted before it arrives, is not a variance."""
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    await ledger.post(batch(txn(K.PICK, 3, from_location="A-1", **at(1))))
    posting = await ledger.post(batch(txn(K.COUNT, 10, to_location="A-1", **at(0))))
    assert posting.movements == []
    assert await count_row(engine) == (10, 10, 0)
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 7


async def test_a_late_count_adjusts_at_its_own_time(ledger: Ledger, engine: AsyncEngine) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    await ledger.post(batch(txn(K.PICK, 3, from_location="A-1", **at(1))))
    posting = await ledger.post(batch(txn(K.COUNT, 8, to_location="A-1", **at(0))))
    [moved] = posting.movements
    assert (moved.from_location, moved.to_location, moved.qty) == ("A-1", "@loss", 2)
    assert moved.occurred_at == T
    assert await count_row(engine) == (8, 10, -2)
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 5  # the count, then the pick
    assert await book_at(engine, T) == 8


async def test_a_late_movement_before_a_count_is_not_a_variance(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    count = txn(K.COUNT, 10, to_location="A-1", **at(0))
    await ledger.post(batch(count))
    await ledger.post(batch(txn(K.PICK, 1, from_location="A-1", **at(2))))
    late = txn(K.RECEIPT, 4, to_location="A-1", **at(-1))  # taken in before the count
    posting = await ledger.post(batch(late))
    moved = [(m.from_location, m.to_location, m.qty, m.occurred_at) for m in posting.movements]
    assert moved == [
        ("@supplier", "A-1", 4, T - timedelta(hours=1)),
        ("A-1", "@loss", 4, T),  # the count still holds: what it saw included these 4
    ]
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 9  # the count's 10, then the pick
    assert await book_at(engine, T) == 10
    assert await book_at(engine, T - timedelta(minutes=30)) == 14
    async with engine.connect() as conn:
        [link] = (await conn.execute(sa.select(count_settlements))).all()
    assert (link.movement_id, link.count_txn_id) == (posting.movements[1].id, count.id)
    assert await count_row(engine) == (10, 10, 0)  # the count itself is not rewritten


async def test_only_the_earliest_later_count_is_settled(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    await ledger.post(batch(txn(K.COUNT, 9, to_location="A-1", **at(0))))
    await ledger.post(batch(txn(K.COUNT, 9, to_location="A-1", **at(3))))
    posting = await ledger.post(batch(txn(K.PICK, 2, from_location="A-1", **at(-1))))
    moved = [(m.from_location, m.to_location, m.qty, m.occurred_at) for m in posting.movements]
    assert moved == [("A-1", "@customer", 2, T - timedelta(hours=1)), ("@loss", "A-1", 2, T)]
    assert await book_at(engine, T) == 9
    assert await book_at(engine, T + timedelta(hours=3)) == 9


async def test_a_movement_after_every_count_owes_nothing(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    await ledger.post(batch(txn(K.COUNT, 5, to_location="A-1", **at(0))))
    posting = await ledger.post(batch(txn(K.PICK, 2, from_location="A-1", **at(1))))
    assert [m.qty for m in posting.movements] == [2]
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 3
    async with engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(movements))
        ).scalar_one() == 2


async def test_a_late_count_before_a_later_count_settles_with_it(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    """The later count still rules from its time on; the earlier one between the two."""
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    await ledger.post(batch(txn(K.COUNT, 10, to_location="A-1", **at(2))))
    posting = await ledger.post(batch(txn(K.COUNT, 7, to_location="A-1", **at(0))))
    moved = [(m.from_location, m.to_location, m.qty, m.occurred_at) for m in posting.movements]
    assert moved == [("A-1", "@loss", 3, T), ("@loss", "A-1", 3, T + timedelta(hours=2))]
    assert await book_at(engine, T + timedelta(hours=1)) == 7
    assert await book_at(engine, T + timedelta(hours=2)) == 10
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 10


async def test_a_reversed_compensation_undoes_it_at_the_counts_time(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    """Reversals owe nothing: reversing the compensation puts the late movement back in."""
    await ledger.post(batch(txn(K.COUNT, 5, to_location="A-1", **at(0))))
    posting = await ledger.post(batch(txn(K.RECEIPT, 2, to_location="A-1", **at(-1))))
    compensation = posting.movements[1]
    back = await ledger.reverse_movement(compensation.id, audit=audit_entry())
    [moved] = back.movements
    assert (moved.from_location, moved.to_location, moved.qty) == ("@loss", "A-1", 2)
    assert (moved.occurred_at, moved.reverses) == (T, compensation.id)
    assert await book_at(engine, T) == 7
