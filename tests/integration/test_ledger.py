"""The ledger against real SQLite files and a real PostgreSQL (one fresh database per test)."""

import asyncio
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.errors import NotFoundError, StateError
from aggregator.ledger import CONFLICT, Ledger
from aggregator.ledger.reads import item_totals
from aggregator.schema import counts, items, movements, rejected_txns, transactions
from aggregator.writer import Writer
from stockwire.ack import AckStatus
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import audit_entry, batch, count_rows, stock, txn

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind


async def assert_zero_sum(engine: AsyncEngine) -> None:
    totals = await item_totals(engine)
    assert totals, "expected some balances"
    assert all(total == 0 for total in totals.values()), totals


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        (K.RECEIPT, {"to_location": "A-1"}, ("@supplier", "A-1")),
        (K.SHIPMENT, {"from_location": "A-1"}, ("A-1", "@customer")),
        (K.SHIPMENT, {"from_location": "A-1", "to_location": "@transit"}, ("A-1", "@transit")),
        (K.PICK, {"from_location": "A-1"}, ("A-1", "@customer")),
        (K.PICK, {"from_location": "A-1", "to_location": "PACK-1"}, ("A-1", "PACK-1")),
        (K.RETURN, {"to_location": "A-1"}, ("@customer", "A-1")),
        (K.RETURN, {"from_location": "@transit", "to_location": "A-1"}, ("@transit", "A-1")),
        (K.PUTAWAY, {"from_location": "DOCK-1", "to_location": "A-1"}, ("DOCK-1", "A-1")),
        (K.TRANSFER, {"from_location": "A-1", "to_location": "B-2"}, ("A-1", "B-2")),
        (K.ADJUSTMENT, {"from_location": "A-1"}, ("A-1", "@loss")),
        (K.ADJUSTMENT, {"to_location": "A-1"}, ("@loss", "A-1")),
    ],
)
async def test_each_kind_moves_stock_between_its_two_sides(
    ledger: Ledger,
    engine: AsyncEngine,
    kind: TxnKind,
    given: dict[str, str],
    expected: tuple[str, str],
) -> None:
    t = txn(kind, qty=5, **given)
    posting = await ledger.post(batch(t))
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED]
    [moved] = posting.movements
    assert (moved.from_location, moved.to_location, moved.qty) == (*expected, 5)
    assert (moved.txn_id, moved.kind, moved.sku) == (t.id, kind, "SKU-1")
    assert await stock(engine) == {("SKU-1", expected[0], ""): -5, ("SKU-1", expected[1], ""): 5}
    await assert_zero_sum(engine)


async def test_mixed_day_keeps_every_item_summing_to_zero(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    day = [
        txn(K.RECEIPT, 100, to_location="DOCK-1", lot="L1"),
        txn(K.RECEIPT, 40, gtin="04006381333931", sku=None, to_location="DOCK-1"),
        txn(K.PUTAWAY, 60, from_location="DOCK-1", to_location="A-1", lot="L1"),
        txn(K.PICK, 7, from_location="A-1", lot="L1"),
        txn(
            K.TRANSFER,
            3,
            gtin="04006381333931",
            sku=None,
            from_location="DOCK-1",
            to_location="B-1",
        ),
        txn(K.ADJUSTMENT, 2, from_location="A-1", lot="L1"),
        txn(K.RETURN, 1, to_location="A-1", lot="L1"),
        txn(K.COUNT, 50, to_location="A-1", lot="L1"),
    ]
    await ledger.post(batch(*day[:4]))
    await ledger.post(batch(*day[4:]))
    await assert_zero_sum(engine)
    have = await stock(engine)
    assert have[("SKU-1", "A-1", "L1")] == 50
    assert have[("SKU-1", "DOCK-1", "L1")] == 40
    assert have[("04006381333931", "B-1", "")] == 3
    assert await count_rows(engine, movements) == 8  # the count moved 50 - 52 = -2


async def test_same_id_same_body_is_a_duplicate_and_moves_nothing(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    t = txn(K.RECEIPT, 5, to_location="A-1")
    first = await ledger.post_batch(batch(t))
    again = await ledger.post(batch(t))
    assert [r.status for r in first] == [AckStatus.ACCEPTED]
    assert [r.status for r in again.results] == [AckStatus.DUPLICATE]
    assert again.movements == []
    assert await count_rows(engine, movements) == 1
    assert await stock(engine) == {("SKU-1", "@supplier", ""): -5, ("SKU-1", "A-1", ""): 5}


async def test_same_id_different_body_is_a_conflict_and_kept(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    t = txn(K.RECEIPT, 5, to_location="A-1")
    changed = t.model_copy(update={"qty": 6})
    results = await ledger.post_batch(batch(t, changed))
    assert [r.status for r in results] == [AckStatus.ACCEPTED, AckStatus.REJECTED]
    assert results[1].reason == CONFLICT
    results = await ledger.post_batch(batch(changed))
    assert [(r.status, r.reason) for r in results] == [(AckStatus.REJECTED, CONFLICT)]
    async with engine.connect() as conn:
        kept = (await conn.execute(sa.select(rejected_txns))).all()
    assert [(r.txn_id, r.reason, r.body["qty"]) for r in kept] == [(t.id, CONFLICT, 6)] * 2
    assert await stock(engine) == {("SKU-1", "@supplier", ""): -5, ("SKU-1", "A-1", ""): 5}


async def test_unknown_virtual_location_is_rejected_and_kept(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    bad = txn(K.RECEIPT, 5, from_location="@foo", to_location="A-1")
    good = txn(K.RECEIPT, 1, to_location="A-1")
    results = await ledger.post_batch(batch(bad, good))
    assert [r.status for r in results] == [AckStatus.REJECTED, AckStatus.ACCEPTED]
    assert results[0].reason is not None
    assert "@foo" in results[0].reason
    assert await count_rows(engine, rejected_txns) == 1
    assert await count_rows(engine, transactions) == 1


async def test_a_txn_whose_filled_in_side_is_its_given_one_is_rejected_with_the_batch_posting(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    """Found by test_ledger_invariants: these failed the movements' two-sides constraint, so the
    whole batch failed (over MQTT: dead-lettered and sent again by the edge, for ever)."""
    bad = [
        txn(K.PICK, 1, from_location="@customer"),
        txn(K.SHIPMENT, 1, from_location="@customer"),
        txn(K.RETURN, 1, to_location="@customer"),
        txn(K.RECEIPT, 1, to_location="@supplier"),
        txn(K.ADJUSTMENT, 1, from_location="@loss"),
        txn(K.ADJUSTMENT, 1, to_location="@loss"),
        txn(K.COUNT, 3, to_location="@loss"),
        txn(K.COUNT, 3, to_location="@transit"),
    ]
    good = txn(K.RECEIPT, 2, to_location="A-1")
    results = await ledger.post_batch(batch(*bad, good))
    assert [r.status for r in results] == [AckStatus.REJECTED] * len(bad) + [AckStatus.ACCEPTED]
    assert [r.reason for r in results[:3]] == [
        "from_location '@customer': a pick without to_location goes to '@customer', so it"
        " would move stock from a location to itself",
        "from_location '@customer': a shipment without to_location goes to '@customer', so it"
        " would move stock from a location to itself",
        "to_location '@customer': a return without from_location comes from '@customer', so it"
        " would move stock from a location to itself",
    ]
    assert results[6].reason == (
        "to_location '@loss': a count counts a physical location, not a virtual one"
    )
    assert await count_rows(engine, rejected_txns) == len(bad)
    assert await stock(engine) == {("SKU-1", "@supplier", ""): -2, ("SKU-1", "A-1", ""): 2}


@pytest.mark.parametrize(("counted", "variance"), [(7, -3), (12, 2), (10, 0), (0, -10)])
async def test_count_posts_its_variance_against_loss(
    ledger: Ledger, engine: AsyncEngine, counted: int, variance: int
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1")))
    posting = await ledger.post(batch(txn(K.COUNT, counted, to_location="A-1")))
    if variance == 0:
        assert posting.movements == []
    else:
        [moved] = posting.movements
        sides = ("@loss", "A-1") if variance > 0 else ("A-1", "@loss")
        assert (moved.from_location, moved.to_location, moved.qty) == (*sides, abs(variance))
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(counts))).one()
    assert (row.counted, row.book, row.variance) == (counted, 10, variance)
    assert (await stock(engine)).get(("SKU-1", "A-1", ""), 0) == counted
    await assert_zero_sum(engine)


async def test_count_sees_earlier_txns_of_its_own_batch(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    await ledger.post(
        batch(
            txn(K.RECEIPT, 10, to_location="A-1", lot="L"),
            txn(K.RECEIPT, 5, to_location="A-1", lot="L"),
            txn(K.COUNT, 14, to_location="A-1", lot="L"),
        )
    )
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(counts))).one()
    assert (row.book, row.variance, row.lot) == (15, -1, "L")
    assert (await stock(engine))[("SKU-1", "A-1", "L")] == 14


async def test_low_confidence_waits_for_review_then_approve_or_void(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    unsure = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.2)
    doubtful = txn(K.RECEIPT, 9, to_location="A-1", confidence=0.1)
    posting = await ledger.post(batch(unsure, doubtful))
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED] * 2
    assert posting.movements == []
    assert await count_rows(engine, movements) == 0
    assert await _status(engine, unsure.id) == "pending"

    approved = await ledger.approve(unsure.id, audit=audit_entry())
    assert [m.qty for m in approved.movements] == [4]
    await ledger.void(doubtful.id, audit=audit_entry())
    assert await _status(engine, unsure.id) == "posted"
    assert await _status(engine, doubtful.id) == "voided"
    assert await stock(engine) == {("SKU-1", "@supplier", ""): -4, ("SKU-1", "A-1", ""): 4}
    with pytest.raises(StateError):
        await ledger.approve(doubtful.id, audit=audit_entry())
    with pytest.raises(NotFoundError):
        await ledger.void(txn(K.RECEIPT, to_location="A-1").id, audit=audit_entry())
    again = await ledger.post_batch(batch(doubtful))
    assert [r.status for r in again] == [AckStatus.DUPLICATE]


async def _status(engine: AsyncEngine, txn_id: UUID) -> str:
    async with engine.connect() as conn:
        query = sa.select(transactions.c.status).where(transactions.c.id == txn_id)
        return str((await conn.execute(query)).scalar_one())


async def test_reversal_is_a_new_linked_movement(ledger: Ledger, engine: AsyncEngine) -> None:
    posting = await ledger.post(batch(txn(K.RECEIPT, 5, to_location="A-1")))
    original = posting.movements[0]
    reversal = (await ledger.reverse_movement(original.id, audit=audit_entry())).movements[0]
    assert reversal.reverses == original.id
    assert (reversal.from_location, reversal.to_location) == ("A-1", "@supplier")
    assert await stock(engine) == {}
    assert await count_rows(engine, movements) == 2
    with pytest.raises(StateError):
        await ledger.reverse_movement(original.id, audit=audit_entry())
    with pytest.raises(NotFoundError):
        await ledger.reverse_movement(999_999, audit=audit_entry())


async def test_negative_stock_at_a_physical_location_is_reported(ledger: Ledger) -> None:
    posting = await ledger.post(batch(txn(K.PICK, 3, from_location="A-1", lot="L")))
    assert [(n.sku, n.location, n.lot, n.qty) for n in posting.negatives] == [
        ("SKU-1", "A-1", "L", -3)
    ]


async def test_items_are_created_on_first_sight_and_flagged(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    gtin = "04006381333931"
    await ledger.post(
        batch(
            txn(K.RECEIPT, 1, sku=None, gtin=gtin, to_location="A-1"),
            txn(K.RECEIPT, 1, sku="SKU-9", gtin=gtin, to_location="A-1"),
            txn(K.RECEIPT, 1, sku="SKU-1", to_location="A-1"),
        )
    )
    await ledger.post(batch(txn(K.RECEIPT, 1, sku=None, gtin=gtin, to_location="A-1")))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(items).order_by(items.c.id))).all()
    assert sorted((r.sku or "", r.gtin or "", r.flagged) for r in rows) == [
        ("", gtin, True),
        ("SKU-1", "", True),
        ("SKU-9", "", True),
    ]
    assert (await stock(engine))[(gtin, "A-1", "")] == 2
    await assert_zero_sum(engine)


async def test_post_many_is_one_commit_with_results_per_batch(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    first = txn(K.RECEIPT, 5, to_location="A-1")
    second = txn(K.PICK, 2, from_location="A-1", edge="edge2")
    group = await ledger.post_many(
        [
            batch(first),
            batch(second, edge="edge2"),
            batch(first, first.model_copy(update={"qty": 9})),
        ]
    )
    assert [[r.status for r in results] for results in group.results] == [
        [AckStatus.ACCEPTED],
        [AckStatus.ACCEPTED],
        [AckStatus.DUPLICATE, AckStatus.REJECTED],
    ]
    assert [m.txn_id for m in group.movements] == [first.id, second.id]
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 3
    await assert_zero_sum(engine)


async def test_concurrent_writers_post_a_txn_once(engine: AsyncEngine, db_url: str) -> None:
    """Two replicas racing on the same batch: one posts it, the other sees a duplicate."""
    writers = [Writer(db_url), Writer(db_url)]
    one, two = (Ledger(w, site="site1") for w in writers)
    shared = batch(*[txn(K.RECEIPT, 1, to_location=f"A-{n}") for n in range(50)])
    try:
        results = await asyncio.gather(one.post_batch(shared), two.post_batch(shared))
    finally:
        for w in writers:
            w.close()
    statuses = sorted({r.status for rs in results for r in rs})
    assert statuses in ([AckStatus.ACCEPTED, AckStatus.DUPLICATE], [AckStatus.ACCEPTED])
    assert await count_rows(engine, movements) == 50
    await assert_zero_sum(engine)
