"""The ledger: post batches exactly once, approve or void pending ones, reverse movements."""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aggregator.database import writing
from aggregator.errors import NotFoundError, StateError
from aggregator.ledger import apply
from aggregator.ledger.apply import Applied, BalanceKey, NegativeBalance
from aggregator.ledger.body import body_hash, canonical_body
from aggregator.ledger.catalog import Item, Location
from aggregator.ledger.sides import locations_named
from aggregator.ledger.upsert import insert
from aggregator.schema import (
    VIRTUAL_LOCATIONS,
    edges,
    items,
    locations,
    movements,
    rejected_txns,
    transactions,
)
from stockwire.ack import AckResult, AckStatus
from stockwire.events import Movement
from stockwire.txn import StockTransaction, TxnBatch

log = logging.getLogger(__name__)

# Concurrent replicas may insert the same new txn id or item at once: the loser retries.
POST_ATTEMPTS_MAX = 3
CONFLICT = "conflict: this id was posted before with a different body"
# Txns per post_many: keeps every IN (...) list well under the 32k bound-parameter limits.
GROUP_TXNS_MAX = 5_000


@dataclass(frozen=True, slots=True)
class Posting:
    results: list[AckResult]
    movements: list[Movement]
    negatives: list[NegativeBalance]


@dataclass(frozen=True, slots=True)
class GroupPosting:
    results: list[list[AckResult]]  # one list per batch, in the order given
    movements: list[Movement]
    negatives: list[NegativeBalance]


@dataclass(slots=True)
class _Sorted:
    results: list[list[AckResult]]
    posted: list[StockTransaction]
    pending: list[StockTransaction]
    rejected: list[tuple[StockTransaction, str]]
    digests: dict[UUID, str]


class Ledger:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        site: str,
        review_confidence_min: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.site = site
        self.review_confidence_min = review_confidence_min
        self.clock = clock

    async def post_batch(self, batch: TxnBatch) -> list[AckResult]:
        return (await self.post(batch)).results

    async def post(self, batch: TxnBatch) -> Posting:
        """Post a batch in one database transaction; results are in batch order."""
        group = await self.post_many([batch])
        return Posting(group.results[0], group.movements, group.negatives)

    async def post_many(self, batches: Sequence[TxnBatch]) -> GroupPosting:
        """Post several batches in ONE database transaction (group commit); results per batch.

        Same outcome as posting them one after another, at a fraction of the per-commit cost.
        """
        assert batches, "post_many needs at least one batch"
        assert sum(len(b.txns) for b in batches) <= GROUP_TXNS_MAX, "split the group"
        for attempt in range(1, POST_ATTEMPTS_MAX + 1):
            try:
                async with writing(self.engine) as conn:
                    return await self._post(conn, batches)
            except IntegrityError:
                if attempt == POST_ATTEMPTS_MAX:
                    raise
                log.info("%d batch(es) raced another writer; retrying", len(batches))
        raise AssertionError("unreachable")

    async def _post(self, conn: AsyncConnection, batches: Sequence[TxnBatch]) -> GroupPosting:
        now = self.clock()
        ids = [t.id for b in batches for t in b.txns]
        query = sa.select(transactions.c.id, transactions.c.body_hash).where(
            transactions.c.id.in_(ids)
        )
        known = {r.id: r.body_hash for r in await conn.execute(query)}
        sorted_ = self._sort(batches, known)
        await self._insert_txns(conn, sorted_, now)
        applied = await apply.apply_txns(conn, sorted_.posted, now)
        await self._touch_edges(conn, batches, now)
        return GroupPosting(sorted_.results, applied.movements, applied.negatives)

    def _sort(self, batches: Sequence[TxnBatch], known: dict[UUID, str]) -> _Sorted:
        out = _Sorted([], [], [], [], {})
        for batch in batches:
            results: list[AckResult] = []
            for txn in batch.txns:
                results.append(self._sort_one(txn, known, out))
            out.results.append(results)
        return out

    def _sort_one(self, txn: StockTransaction, known: dict[UUID, str], out: _Sorted) -> AckResult:
        digest = body_hash(txn)
        reason = _rejection(txn, known.get(txn.id), digest)
        if reason == "":
            return AckResult.model_construct(id=txn.id, status=AckStatus.DUPLICATE, reason=None)
        if reason is not None:
            out.rejected.append((txn, reason))
            return AckResult(id=txn.id, status=AckStatus.REJECTED, reason=reason)
        known[txn.id] = digest
        out.digests[txn.id] = digest
        pending = txn.confidence < self.review_confidence_min
        (out.pending if pending else out.posted).append(txn)
        return AckResult.model_construct(id=txn.id, status=AckStatus.ACCEPTED, reason=None)

    async def _insert_txns(self, conn: AsyncConnection, out: _Sorted, now: datetime) -> None:
        rows = [_txn_row(t, out.digests[t.id], "posted", now) for t in out.posted]
        rows += [_txn_row(t, out.digests[t.id], "pending", now) for t in out.pending]
        if rows:
            await conn.execute(sa.insert(transactions), rows)
        if out.rejected:
            kept = [_rejected_row(t, reason, now) for t, reason in out.rejected]
            await conn.execute(sa.insert(rejected_txns), kept)

    async def _touch_edges(
        self, conn: AsyncConnection, batches: Sequence[TxnBatch], now: datetime
    ) -> None:
        last_seq: dict[str, int] = {}
        for batch in batches:
            seq = max(t.seq for t in batch.txns)
            last_seq[batch.edge] = max(seq, last_seq.get(batch.edge, seq))
        rows = [
            {"site": self.site, "edge": edge, "last_seq": seq, "last_seen": now}
            for edge, seq in sorted(last_seq.items())
        ]
        stmt = insert(conn, edges)
        newer = sa.func.coalesce(edges.c.last_seq, -1) < stmt.excluded.last_seq
        upsert = stmt.on_conflict_do_update(
            index_elements=[edges.c.site, edges.c.edge],
            set_={
                "last_seen": stmt.excluded.last_seen,
                "last_seq": sa.case((newer, stmt.excluded.last_seq), else_=edges.c.last_seq),
            },
        )
        await conn.execute(upsert, rows)

    async def approve(self, txn_id: UUID) -> Posting:
        """A person confirms a pending transaction: it posts now (counts against today's book)."""
        async with writing(self.engine) as conn:
            txn = await self._pending(conn, txn_id)
            now = self.clock()
            applied = await apply.apply_txns(conn, [txn], now)
            await _set_status(conn, txn_id, "posted", now)
        result = AckResult(id=txn_id, status=AckStatus.ACCEPTED)
        return Posting([result], applied.movements, applied.negatives)

    async def void(self, txn_id: UUID) -> None:
        async with writing(self.engine) as conn:
            await self._pending(conn, txn_id)
            await _set_status(conn, txn_id, "voided", None)

    async def _pending(self, conn: AsyncConnection, txn_id: UUID) -> StockTransaction:
        query = (
            sa.select(transactions.c.status, transactions.c.body)
            .where(transactions.c.id == txn_id)
            .with_for_update()
        )
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise NotFoundError(f"transaction {txn_id} not found")
        if row.status != "pending":
            raise StateError(f"transaction {txn_id} is {row.status}, not pending")
        return StockTransaction.model_validate(row.body)

    async def reverse_movement(self, movement_id: int) -> Posting:
        """Undo a movement with a new, linked, opposite one; the original is never edited."""
        async with writing(self.engine) as conn:
            leg = await _reversal_leg(conn, movement_id)
            deltas: defaultdict[BalanceKey, int] = defaultdict(int)
            apply.move(deltas, leg)
            applied: Applied = await apply.write_legs(conn, [leg], deltas, self.clock())
        return Posting([], applied.movements, applied.negatives)


def _rejection(txn: StockTransaction, known_hash: str | None, digest: str) -> str | None:
    """None = accept; "" = duplicate; anything else = why it is rejected."""
    if known_hash is not None:
        return "" if known_hash == digest else CONFLICT
    for code in locations_named(txn):
        if code.startswith("@") and code not in VIRTUAL_LOCATIONS:
            return f"unknown virtual location {code!r}"
    return None


def _txn_row(txn: StockTransaction, digest: str, status: str, now: datetime) -> dict[str, Any]:
    return {
        "id": txn.id,
        "edge": txn.edge,
        "seq": txn.seq,
        "kind": txn.kind.value,
        "status": status,
        "body_hash": digest,
        "body": canonical_body(txn),
        "occurred_at": apply.utc(txn.occurred_at),
        "recorded_at": apply.utc(txn.recorded_at),
        "received_at": now,
        "committed_at": now if status == "posted" else None,
    }


def _rejected_row(txn: StockTransaction, reason: str, now: datetime) -> dict[str, Any]:
    body = canonical_body(txn)
    return {"txn_id": txn.id, "edge": txn.edge, "reason": reason, "body": body, "received_at": now}


async def _set_status(
    conn: AsyncConnection, txn_id: UUID, status: str, committed_at: datetime | None
) -> None:
    await conn.execute(
        sa.update(transactions)
        .where(transactions.c.id == txn_id)
        .values(status=status, committed_at=committed_at)
    )


async def _reversal_leg(conn: AsyncConnection, movement_id: int) -> apply.Leg:
    src = locations.alias("src")
    dst = locations.alias("dst")
    reversal = movements.alias("reversal")
    query = (
        sa.select(
            movements.c.qty,
            movements.c.reverses,
            transactions.c.body,
            items.c.id.label("item_id"),
            items.c.sku,
            items.c.gtin,
            src.c.id.label("src_id"),
            src.c.code.label("src_code"),
            src.c.virtual.label("src_virtual"),
            dst.c.id.label("dst_id"),
            dst.c.code.label("dst_code"),
            dst.c.virtual.label("dst_virtual"),
            reversal.c.id.label("reversed_by"),
        )
        .join(transactions, transactions.c.id == movements.c.txn_id)
        .join(items, items.c.id == movements.c.item_id)
        .join(src, src.c.id == movements.c.from_location_id)
        .join(dst, dst.c.id == movements.c.to_location_id)
        .outerjoin(reversal, reversal.c.reverses == movements.c.id)
        .where(movements.c.id == movement_id)
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"movement {movement_id} not found")
    if row.reversed_by is not None:
        raise StateError(f"movement {movement_id} is already reversed by {row.reversed_by}")
    if row.reverses is not None:
        raise StateError(f"movement {movement_id} is a reversal; post a new transaction instead")
    return apply.Leg(
        txn=StockTransaction.model_validate(row.body),
        item=Item(row.item_id, row.sku, row.gtin),
        src=Location(row.dst_id, row.dst_code, row.dst_virtual),
        dst=Location(row.src_id, row.src_code, row.src_virtual),
        qty=row.qty,
        reverses=movement_id,
    )
