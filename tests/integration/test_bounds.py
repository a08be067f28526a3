"""Plausibility bounds on time and quantity (DESIGN §9), against real SQLite and PostgreSQL."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger
from aggregator.ledger.bounds import Bounds
from aggregator.schema import rejected_txns, transactions
from aggregator.writer import Writer
from stockwire.ack import AckStatus
from stockwire.txn import StockTransaction, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import batch, stock, txn

db_url = support.db_url
engine = support.engine
writer = support.writer

NOW = datetime.now(UTC)
BOUNDS = Bounds(
    future_skew=timedelta(minutes=5),
    age_max=timedelta(days=30),
    qty_max=1000,
    qty_max_per_item={"SKU-BIG": 50_000},
)


def _odd() -> dict[str, StockTransaction]:
    def receipt(qty: int = 1, at: datetime = NOW, sku: str = "SKU-1") -> StockTransaction:
        return txn(TxnKind.RECEIPT, qty, sku=sku, to_location="A-1", occurred_at=at)

    return {
        "year 9999": receipt(at=datetime(9999, 12, 31, tzinfo=UTC)),
        "year 1970": receipt(at=datetime(1970, 1, 1, tzinfo=UTC)),
        "a billion": receipt(qty=1_000_000_000),
        "just within": receipt(qty=1000, at=NOW + timedelta(minutes=4)),
        "per item": receipt(qty=40_000, sku="SKU-BIG"),
    }


WHY = {
    "year 9999": "ahead of the aggregator's clock",
    "year 1970": "older than bounds.age_max_s",
    "a billion": "qty 1000000000 of SKU-1 is over the maximum 1000",
}


async def test_out_of_bounds_waits_in_review_with_the_reason(
    writer: Writer, engine: AsyncEngine
) -> None:
    odd = _odd()
    ledger = Ledger(writer, site="site1", bounds=BOUNDS, clock=lambda: NOW)
    results = (await ledger.post(batch(*odd.values()))).results
    assert [r.status for r in results] == [AckStatus.ACCEPTED] * len(odd)
    async with engine.connect() as conn:
        rows = {r.id: r for r in await conn.execute(sa.select(transactions))}
    for name, t in odd.items():
        row = rows[t.id]
        if name in WHY:
            assert (row.status, WHY[name] in (row.review_reason or "")) == ("pending", True), name
        else:
            assert (row.status, row.review_reason) == ("posted", None), name
    assert await stock(engine) == {
        ("SKU-1", "A-1", ""): 1000,
        ("SKU-1", "@supplier", ""): -1000,
        ("SKU-BIG", "A-1", ""): 40_000,
        ("SKU-BIG", "@supplier", ""): -40_000,
    }


async def test_with_the_reject_policy_out_of_bounds_is_rejected_with_the_reason(
    writer: Writer, engine: AsyncEngine
) -> None:
    odd = _odd()
    ledger = Ledger(writer, site="site1", bounds=replace(BOUNDS, review=False), clock=lambda: NOW)
    results = {r.id: r for r in (await ledger.post(batch(*odd.values()))).results}
    for name, t in odd.items():
        if name in WHY:
            assert results[t.id].status is AckStatus.REJECTED, name
            assert WHY[name] in (results[t.id].reason or ""), name
        else:
            assert results[t.id].status is AckStatus.ACCEPTED, name
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(rejected_txns.c.reason))).scalars().all()
    assert len(kept) == len(WHY)


async def test_low_confidence_says_why_it_waits(writer: Writer, engine: AsyncEngine) -> None:
    t = txn(TxnKind.RECEIPT, 1, to_location="A-1", confidence=0.2)
    await Ledger(writer, site="site1", review_confidence_min=0.5).post(batch(t))
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(transactions))).one()
    assert row.status == "pending"
    assert row.review_reason == "confidence 0.2 is below review_confidence_min 0.5"
