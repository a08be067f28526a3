"""Two writers on one database at once: two processes (as two aggregators would be) on SQLite
and PostgreSQL, and on PostgreSQL a posting that commits late under a reader paging by id."""

import asyncio
import itertools
import json
import logging
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.database import COMMIT_ORDER_LOCK, create_sync_engine
from aggregator.ledger import Ledger
from aggregator.ledger.reads import item_totals, movements_after, rejected_after
from aggregator.ledger.sides import sides
from aggregator.migrate import MIGRATIONS
from aggregator.schema import balances, edges, movements, transactions
from aggregator.writer import Work, Writer
from stockwire.ack import AckStatus
from stockwire.txn import StockTransaction, TxnBatch, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    WAIT_S,
    batch,
    count_rows,
    txn,
    wait_for,
)
from tests.integration.race_support import post_all, together, upgrade_when_ready

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine

K = TxnKind
T = TypeVar("T")
BATCHES = 24  # per writer of its own, and as many shared by both
TXNS_PER_BATCH = 10
postgres_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _batches() -> list[TxnBatch]:
    """Receipts, shipments and transfers of three items between two bins: every writer moves
    the same balances."""
    out: list[TxnBatch] = []
    for b in range(BATCHES):
        txns: list[StockTransaction] = []
        for n in range(TXNS_PER_BATCH):
            sku = f"SKU-{n % 3}"
            match (b + n) % 3:
                case 0:
                    txns.append(txn(K.RECEIPT, 1 + n, sku=sku, to_location="A-1"))
                case 1:
                    txns.append(txn(K.SHIPMENT, 1, sku=sku, from_location="A-1"))
                case _:
                    moved = txn(K.TRANSFER, 2, sku=sku, from_location="A-1", to_location="A-2")
                    txns.append(moved)
        out.append(batch(*txns))
    return out


def _expected(txns: list[StockTransaction]) -> dict[tuple[str | None, str, str], int]:
    book: defaultdict[tuple[str | None, str, str], int] = defaultdict(int)
    for t in txns:
        src, dst = sides(t)
        book[(t.sku, src, t.lot or "")] -= t.qty
        book[(t.sku, dst, t.lot or "")] += t.qty
    return {k: v for k, v in book.items() if v != 0}


async def _balances_off_their_movements(engine: AsyncEngine) -> dict[tuple[int, int, str], str]:
    """Every balance that is not the sum of its movements, with both figures."""
    m = movements.c
    legs = sa.union_all(
        sa.select(m.item_id, m.to_location_id.label("location_id"), m.lot, m.qty),
        sa.select(m.item_id, m.from_location_id, m.lot, (-m.qty).label("qty")),
    ).subquery()
    summed = sa.select(
        legs.c.item_id, legs.c.location_id, legs.c.lot, sa.func.sum(legs.c.qty)
    ).group_by(legs.c.item_id, legs.c.location_id, legs.c.lot)
    async with engine.connect() as conn:
        moved = {(r[0], r[1], r[2]): int(r[3]) for r in await conn.execute(summed)}
        kept = {(r[0], r[1], r[2]): int(r[3]) for r in await conn.execute(sa.select(balances))}
    keys = moved.keys() | kept.keys()
    return {
        k: f"balance {kept.get(k, 0)}, movements {moved.get(k, 0)}"
        for k in keys
        if kept.get(k, 0) != moved.get(k, 0)
    }


async def test_two_processes_migrating_a_new_database_at_once_both_start(db_url: str) -> None:
    """Two aggregators starting together on an empty database: one migrates, the other
    finds it done (neither fails on a table the other just made)."""
    assert await together(upgrade_when_ready, [(db_url,), (db_url,)]) == [0, 0]
    engine = create_sync_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            assert conn.execute(sa.select(sa.func.count()).select_from(movements)).scalar() == 0
    finally:
        engine.dispose()
    assert [v for (v,) in version] == [ScriptDirectory(str(MIGRATIONS)).get_current_head()]


async def test_two_processes_posting_at_once_lose_nothing_and_post_each_txn_once(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    """Each process posts its own batches interleaved with the shared ones (same ids, same
    bodies) the other posts too: every shared txn is accepted by one and a duplicate to the
    other, and every balance is the sum of its movements."""
    own = [_batches(), _batches()]
    shared = _batches()
    # In opposite orders: the two meet on the same batch somewhere, whoever runs ahead.
    plans = [
        list(itertools.chain(*zip(mine, order, strict=True)))
        for mine, order in zip(own, (shared, shared[::-1]), strict=True)
    ]
    outs = [tmp_path / f"writer-{n}.json" for n in range(len(plans))]
    payloads = [[b.model_dump_json() for b in plan] for plan in plans]
    exits = await together(
        post_all, [(db_url, SITE, p, out) for p, out in zip(payloads, outs, strict=True)]
    )
    assert exits == [0, 0]

    outcomes = [json.loads(out.read_text()) for out in outs]
    shared_ids = {str(t.id) for b in shared for t in b.txns}
    per_txn: defaultdict[str, list[str]] = defaultdict(list)
    for results in outcomes:
        for txn_id, status, _reason in results:
            per_txn[txn_id].append(status)
    once = Counter(tuple(sorted(s)) for i, s in per_txn.items() if i in shared_ids)
    assert once == {(AckStatus.ACCEPTED.value, AckStatus.DUPLICATE.value): len(shared_ids)}
    assert all(s == [AckStatus.ACCEPTED.value] for i, s in per_txn.items() if i not in shared_ids)

    everything = [t for plan in (*own, shared) for b in plan for t in b.txns]
    assert await count_rows(engine, transactions) == len(everything)
    assert await count_rows(engine, movements) == len(everything)
    assert await _balances_off_their_movements(engine) == {}
    assert await support.stock(engine) == _expected(everything)
    assert set((await item_totals(engine)).values()) == {0}


class LateWriter(Writer):
    """Does a posting's work, then holds its commit until `commit` is set."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.worked = threading.Event()
        self.commit = threading.Event()

    async def run(self, work: Work[T]) -> T:
        def held(conn: sa.Connection) -> T:
            result = work(conn)
            self.worked.set()
            assert self.commit.wait(WAIT_S), "the test never let the late posting commit"
            return result

        return await super().run(held)


async def _waits_for_a_lock(engine: AsyncEngine) -> bool:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        return bool((await conn.execute(query)).scalar_one())


async def _movement_ids(engine: AsyncEngine, after: int) -> list[int]:
    return [m.id for m in await movements_after(engine, after, 100)]


async def _rejected_ids(engine: AsyncEngine, after: int) -> list[int]:
    return [r.id for r in await rejected_after(engine, after, 100)]


# What each posting moves to (a bin each, or a location that gets it rejected) and the feed.
FEEDS = {
    "movements": (("A-1", "B-1"), _movement_ids),
    "rejected": (("@nope", "@nope"), _rejected_ids),
}


@postgres_only
@pytest.mark.parametrize("feed", FEEDS)
async def test_a_reader_paging_by_id_never_skips_a_late_commit(
    engine: AsyncEngine, db_url: str, feed: str
) -> None:
    """A posting that draws its id and commits late, while another (other edge, item and
    bin: no row in common) posts at once: paging GET /movements (or /rejected) by ?after=
    from what it saw first, the reader still gets both."""
    (first, second), ids_after = FEEDS[feed]
    late, prompt = LateWriter(db_url), Writer(db_url)
    try:
        slow = asyncio.create_task(
            Ledger(late, site=SITE).post_batch(batch(txn(K.RECEIPT, 1, to_location=first)))
        )
        assert await asyncio.to_thread(late.worked.wait, WAIT_S)
        other = txn(K.RECEIPT, 2, edge="edge2", sku="SKU-2", to_location=second)
        fast = asyncio.create_task(Ledger(prompt, site=SITE).post_batch(batch(other, edge="edge2")))

        async def committed_or_waiting() -> bool:
            return fast.done() or await _waits_for_a_lock(engine)

        await wait_for(committed_or_waiting, "the prompt posting to commit or wait")
        seen = await ids_after(engine, 0)
        late.commit.set()
        await asyncio.gather(slow, fast)
        seen += await ids_after(engine, seen[-1] if seen else 0)
    finally:
        late.commit.set()
        late.close()
        prompt.close()
    every = await ids_after(engine, 0)
    assert len(every) == 2
    assert seen == every


@postgres_only
async def test_a_posting_chosen_as_deadlock_victim_runs_again(
    engine: AsyncEngine, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another transaction holds the edge's row that a posting updates last, then waits for
    the commit-order lock the posting holds: PostgreSQL aborts the posting (it waited first,
    so its deadlock check runs first), which runs again once the other has committed."""
    caplog.set_level(logging.INFO, logger="aggregator.ledger")
    other = create_sync_engine(db_url, poolclass=sa.NullPool)
    writer = Writer(db_url)
    try:
        with other.connect() as conn:
            conn.execute(
                sa.insert(edges).values(
                    site=SITE, edge=EDGE, last_seq=-1, last_seen=datetime.now(UTC)
                )
            )
            one = txn(K.RECEIPT, 3, to_location="A-1")
            posting = asyncio.create_task(Ledger(writer, site=SITE).post_batch(batch(one)))
            await wait_for(lambda: _waits_for_a_lock(engine), "the posting to wait for the edge")

            def lock_and_commit() -> None:
                conn.exec_driver_sql("SET LOCAL deadlock_timeout = '60s'")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK})")
                conn.commit()

            await asyncio.to_thread(lock_and_commit)
            assert [r.status for r in await posting] == [AckStatus.ACCEPTED]
    finally:
        writer.close()
        other.dispose()
    assert "DeadlockDetected" in caplog.text
    assert await count_rows(engine, movements) == 1
    assert (await support.stock(engine))[("SKU-1", "A-1", "")] == 3
