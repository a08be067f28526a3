"""The ledger: post batches exactly once, approve or void pending ones, reverse movements."""

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from aggregator.audit import AuditEntry, record
from aggregator.database import lost_a_race
from aggregator.errors import NotFoundError, RefusedError, StateError
from aggregator.ledger import apply, count_tasks, epcs, records
from aggregator.ledger.apply import Applied, BalanceKey, NegativeBalance, StockLevel
from aggregator.ledger.body import body_of
from aggregator.ledger.bounds import Bounds
from aggregator.ledger.catalog import Item, Location
from aggregator.ledger.policy import DEFAULT_POLICY, Policy, forbidding
from aggregator.ledger.reorder import LowStock
from aggregator.ledger.sides import one_place
from aggregator.ledger.upsert import insert_for
from aggregator.schema import (
    VIRTUAL_LOCATIONS,
    edges,
    items,
    locations,
    movements,
    reorder_points,
    transactions,
)
from aggregator.writer import Work, Writer
from stockwire import logs
from stockwire.ack import AckStatus
from stockwire.events import Movement
from stockwire.txn import StockTransaction, TxnBatch

log = logging.getLogger(__name__)
T = TypeVar("T")

# Concurrent replicas may insert the same new txn id, item or EPC at once, or deadlock: the
# loser runs its write again, this many times in all (Ledger._write).
POST_ATTEMPTS_MAX = 3
CONFLICT = "conflict: this id was posted before with a different body"
# Txns per post_many: keeps every IN (...) list well under the 32k bound-parameter limits.
GROUP_TXNS_MAX = 5_000


class Outcome(NamedTuple):
    """What became of one transaction; the ack's result for it (an AckResult on the wire)."""

    id: UUID
    status: AckStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Posting:
    results: list[Outcome]
    movements: list[Movement]
    negatives: list[NegativeBalance]
    levels: list[StockLevel] = field(default_factory=list)  # with Ledger(stock_levels=True)
    low_stock: list[LowStock] = field(default_factory=list)  # raised or cleared (reorder)

    @classmethod
    def of(cls, results: list[Outcome], applied: Applied) -> "Posting":
        """What one write posted (approve, reverse, a count task's line)."""
        return cls(results, applied.movements, applied.negatives, applied.levels, applied.low_stock)


@dataclass(frozen=True, slots=True)
class GroupPosting:
    results: list[list[Outcome]]  # one list per batch, in the order given
    movements: list[Movement]
    negatives: list[NegativeBalance]
    # With Ledger(stock_levels=True): the balances the group leaves, and what went to review.
    levels: list[StockLevel] = field(default_factory=list)
    pending: list[StockTransaction] = field(default_factory=list)
    low_stock: list[LowStock] = field(default_factory=list)


@dataclass(slots=True)
class _Sorted:
    book: epcs.EpcBook  # where the EPCs are, as the txns sorted so far leave them
    results: list[list[Outcome]] = field(default_factory=list)
    posted: list[StockTransaction] = field(default_factory=list)
    kept: list[records.Kept] = field(default_factory=list)  # posted and pending
    rejected: list[records.Refused] = field(default_factory=list)
    held: list[StockTransaction] = field(default_factory=list)  # pending, with EPCs


class Ledger:
    def __init__(
        self,
        writer: Writer,
        *,
        site: str,
        review_confidence_min: float = 0.5,
        review_epcs_moved_elsewhere: bool = True,
        bounds: Bounds | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stock_levels: bool = False,
        policy: Policy = DEFAULT_POLICY,
    ) -> None:
        self.writer = writer
        self.site = site
        self.review_confidence_min = review_confidence_min
        self.review_epcs_moved_elsewhere = review_epcs_moved_elsewhere
        self.bounds = bounds or Bounds.from_settings()
        self.clock = clock
        # Read the balances each posting leaves (one query per posting): for telemetry only.
        self.stock_levels = stock_levels
        self.policy = policy

    async def post_batch(self, batch: TxnBatch) -> list[Outcome]:
        return (await self.post(batch)).results

    async def post(self, batch: TxnBatch) -> Posting:
        """Post a batch in one database transaction; results are in batch order."""
        group = await self.post_many([batch])
        return Posting(
            group.results[0], group.movements, group.negatives, group.levels, group.low_stock
        )

    async def post_many(self, batches: Sequence[TxnBatch]) -> GroupPosting:
        """Post several batches in ONE database transaction (group commit); results per batch.

        Same outcome as posting them one after another, at a fraction of the per-commit cost.
        """
        assert batches, "post_many needs at least one batch"
        assert sum(len(b.txns) for b in batches) <= GROUP_TXNS_MAX, "split the group"
        return await self._write(lambda conn: self._post(conn, batches))

    async def write(self, work: Work[T]) -> T:
        """Run `work` in one write transaction, again if it lost a race (count tasks)."""
        return await self._write(work)

    def post_by_hand(self, conn: sa.Connection, txn: StockTransaction) -> Posting:
        """Post a transaction a person made through the API (a count task's line) in the
        caller's write transaction; the caller records the audit entry."""
        now = self.clock()
        records.insert_txns(conn, [(txn, body_of(txn), "posted", None)], now)
        policy = replace(self.policy, unknown_items="create", count_rules=None)
        plan, applied = apply.apply_txns(conn, [txn], now, levels=self.stock_levels, policy=policy)
        if plan.refused:
            raise RefusedError(f"the count cannot post: {plan.refused[txn.id]}")
        return Posting.of([Outcome(txn.id, AckStatus.ACCEPTED)], applied)

    async def _write(self, work: Work[T]) -> T:
        """Run `work` in one write transaction; again if it lost a race to another writer
        (the same new txn id, item, EPC or reversal inserted at once; a deadlock victim)."""
        for attempt in range(1, POST_ATTEMPTS_MAX + 1):
            try:
                return await self.writer.run(work)
            except DBAPIError as e:
                if attempt == POST_ATTEMPTS_MAX or not (
                    isinstance(e, IntegrityError) or lost_a_race(e)
                ):
                    raise
                log.info("a write raced another writer (%s); retrying", type(e.orig).__name__)
        raise AssertionError("unreachable")

    def _post(self, conn: sa.Connection, batches: Sequence[TxnBatch]) -> GroupPosting:
        now = self.clock()
        ids = [t.id for b in batches for t in b.txns]
        known = {r.id: r.body_hash for r in conn.execute(_KNOWN, {"ids": ids})}
        book = epcs.EpcBook.load(
            conn,
            (t for b in batches for t in b.txns),
            review_moved_elsewhere=self.review_epcs_moved_elsewhere,
        )
        sorted_ = self._sort(batches, known, book, now)
        plan = apply.prepare(conn, sorted_.posted, now, self.policy)
        if plan.refused or plan.unknown:
            _settle(sorted_, plan)
        records.insert_txns(conn, sorted_.kept, now)
        applied = apply.write(conn, plan, now, levels=self.stock_levels)
        count_tasks.hold(conn, plan.tasks.held)  # over the threshold: the line waits
        who = {t.id: f"{t.edge}/{t.device}" for t in sorted_.posted}
        count_tasks.attach(conn, plan.count_rows, plan.tasks, who)  # scanner counts fill lines
        for waited, recount in plan.tasks.superseded:  # a recount took its line
            void_pending(conn, waited, f"superseded by the recount {recount}")
        records.insert_rejected(conn, sorted_.rejected, now)  # after apply: see commit_order
        placed = epcs.record(conn, applied.legs, now, book.known)
        epcs.hold(conn, sorted_.held, placed | book.known)
        self._touch_edges(conn, batches, now)
        pending = [k[0] for k in sorted_.kept if k[2] == "pending"] if self.stock_levels else []
        return GroupPosting(
            sorted_.results,
            applied.movements,
            applied.negatives,
            applied.levels,
            pending,
            applied.low_stock,
        )

    def _sort(
        self,
        batches: Sequence[TxnBatch],
        known: dict[UUID, str],
        book: epcs.EpcBook,
        now: datetime,
    ) -> _Sorted:
        out = _Sorted(book)
        for batch in batches:
            out.results.append([self._sort_one(txn, known, out, now) for txn in batch.txns])
        return out

    def _sort_one(
        self, txn: StockTransaction, known: dict[UUID, str], out: _Sorted, now: datetime
    ) -> Outcome:
        body = body_of(txn)
        reason = _rejection(txn, known.get(txn.id), body.digest)
        if reason == "":
            return Outcome(txn.id, AckStatus.DUPLICATE)
        review = None
        if reason is None and (outside := self.bounds.violation(txn, now)) is not None:
            review, reason = (outside, None) if self.bounds.review else (None, outside)
        if reason is not None:
            out.rejected.append((txn, body, reason))
            return Outcome(txn.id, AckStatus.REJECTED, reason)
        known[txn.id] = body.digest
        review = review or self._doubtful(txn)
        if txn.epcs:  # most have none: keep the EPC book off their path
            review = review or out.book.review(txn)
            if review is None:
                out.book.move(txn)
            else:
                out.held.append(txn)
        if review is not None:
            out.kept.append((txn, body, "pending", review))
        else:
            out.kept.append((txn, body, "posted", None))
            out.posted.append(txn)
        return Outcome(txn.id, AckStatus.ACCEPTED)

    def _doubtful(self, txn: StockTransaction) -> str | None:
        if txn.confidence < self.review_confidence_min:
            return (
                f"confidence {txn.confidence:g} is below review_confidence_min"
                f" {self.review_confidence_min:g}"
            )
        return None

    def _touch_edges(self, conn: sa.Connection, batches: Sequence[TxnBatch], now: datetime) -> None:
        last_seq: dict[str, int] = {}
        for batch in batches:
            seq = max(t.seq for t in batch.txns)
            last_seq[batch.edge] = max(seq, last_seq.get(batch.edge, seq))
        rows = [
            {"site": self.site, "edge": edge, "last_seq": seq, "last_seen": now}
            for edge, seq in sorted(last_seq.items())
        ]
        conn.execute(_edge_upsert(conn.dialect.name), rows)

    # A person's decisions below record their audit entry in the same database transaction.

    async def approve(self, txn_id: UUID, *, audit: AuditEntry) -> Posting:
        """A person confirms a pending transaction: it posts now (a count against the book as of
        its event time, late_counts)."""
        posting = await self._write(lambda conn: self._approve(conn, txn_id, audit))
        moved = len(posting.movements)
        log.info(
            "txn %s approved by %s: %d movement(s)",
            txn_id,
            audit.actor,
            moved,
            extra=logs.about(txn_id),
        )
        return posting

    def _approve(self, conn: sa.Connection, txn_id: UUID, audit: AuditEntry) -> Posting:
        posting = self.approve_pending(conn, txn_id, audit.actor)
        record(conn, audit)
        return posting

    def approve_pending(self, conn: sa.Connection, txn_id: UUID, approver: str) -> Posting:
        """Post a pending transaction in the caller's write transaction (the caller records the
        audit entry); a count task's line that waited with it is posted too."""
        txn = _pending(conn, txn_id)
        now = self.clock()
        epcs.release(conn, txn_id)
        # A person approved it: an item it names is made now, whatever unknown_items says, and
        # it posts whatever the lot and serial rules say (they sent it to review).
        policy = replace(self.policy, unknown_items="create", approved=True, count_rules=None)
        plan, applied = apply.apply_txns(conn, [txn], now, levels=self.stock_levels, policy=policy)
        if plan.refused:
            raise RefusedError(f"transaction {txn_id} cannot post: {plan.refused[txn_id]}")
        epcs.record(conn, applied.legs, now)
        _set_status(conn, txn_id, "posted", now)
        count_tasks.approved(conn, txn_id, approver, now)
        return Posting.of([Outcome(txn_id, AckStatus.ACCEPTED)], applied)

    async def void(self, txn_id: UUID, *, audit: AuditEntry) -> None:
        await self._write(lambda conn: _void(conn, txn_id, audit))
        log.info("txn %s voided by %s", txn_id, audit.actor, extra=logs.about(txn_id))

    async def reverse_movement(self, movement_id: int, *, audit: AuditEntry) -> Posting:
        """Undo a movement with a new, linked, opposite one; the original is never edited."""
        return await self._write(lambda conn: self._reverse(conn, movement_id, audit))

    def _reverse(self, conn: sa.Connection, movement_id: int, audit: AuditEntry) -> Posting:
        leg = _reversal_leg(conn, movement_id)
        if forbidding(conn, [leg.src], self.policy.negative_stock):
            key = (leg.item.id, leg.src.id, leg.txn.lot or "")
            have = apply.locked(conn, [key]).get(key, 0)
            if have < leg.qty:
                reason = apply.negative_refusal(leg, have)
                raise RefusedError(f"movement {movement_id} cannot be reversed: {reason}")
        deltas: defaultdict[BalanceKey, int] = defaultdict(int)
        apply.move(deltas, leg)
        now = self.clock()
        applied: Applied = apply.write_legs(conn, [leg], deltas, now, levels=self.stock_levels)
        epcs.record(conn, applied.legs, now)
        record(conn, audit)
        return Posting.of([], applied)


def _settle(sorted_: _Sorted, plan: apply.Plan) -> None:
    """Take what the plan cannot post out of `posted`: refused ones become rejected (with the
    reason), those naming unknown items (unknown_items = review) wait in review."""
    off = plan.refused.keys() | plan.unknown.keys()
    sorted_.posted = [t for t in sorted_.posted if t.id not in off]
    kept: list[records.Kept] = []
    for txn, body, status, why in sorted_.kept:
        if status != "posted" or txn.id not in off:
            kept.append((txn, body, status, why))
        elif txn.id in plan.unknown:
            kept.append((txn, body, "pending", plan.unknown[txn.id]))
        else:
            sorted_.rejected.append((txn, body, plan.refused[txn.id]))
    sorted_.kept = kept
    for results in sorted_.results:
        for n, outcome in enumerate(results):
            if outcome.status is AckStatus.ACCEPTED and outcome.id in plan.refused:
                results[n] = Outcome(outcome.id, AckStatus.REJECTED, plan.refused[outcome.id])


def _void(conn: sa.Connection, txn_id: UUID, audit: AuditEntry) -> None:
    void_pending(conn, txn_id)
    record(conn, audit)


def void_pending(conn: sa.Connection, txn_id: UUID, why: str | None = None) -> None:
    """Void a pending transaction in the caller's write transaction (`why`: added to its review
    reason); a count task's line that waited with it is uncounted again."""
    _pending(conn, txn_id)
    epcs.release(conn, txn_id)
    _set_status(conn, txn_id, "voided", None, why)
    count_tasks.reopen(conn, txn_id)


def _pending(conn: sa.Connection, txn_id: UUID) -> StockTransaction:
    query = (
        sa.select(transactions.c.status, transactions.c.body)
        .where(transactions.c.id == txn_id)
        .with_for_update()
    )
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"transaction {txn_id} not found")
    if row.status != "pending":
        raise StateError(f"transaction {txn_id} is {row.status}, not pending")
    return StockTransaction.model_validate(row.body)


_KNOWN = sa.select(transactions.c.id, transactions.c.body_hash).where(
    transactions.c.id.in_(sa.bindparam("ids", expanding=True))
)


@functools.cache
def _edge_upsert(dialect: str) -> sa.Executable:
    stmt = insert_for(dialect, edges)
    newer = sa.func.coalesce(edges.c.last_seq, -1) < stmt.excluded.last_seq
    return stmt.on_conflict_do_update(
        index_elements=[edges.c.site, edges.c.edge],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "last_seq": sa.case((newer, stmt.excluded.last_seq), else_=edges.c.last_seq),
        },
    )


def _rejection(txn: StockTransaction, known_hash: str | None, digest: str) -> str | None:
    """None = accept; "" = duplicate; anything else = why it is rejected."""
    if known_hash is not None:
        return "" if known_hash == digest else CONFLICT
    for code in (txn.from_location, txn.to_location):
        if code is not None and code.startswith("@") and code not in VIRTUAL_LOCATIONS:
            return f"unknown virtual location {code!r}"
    return one_place(txn)


def _set_status(
    conn: sa.Connection,
    txn_id: UUID,
    status: str,
    committed_at: datetime | None,
    why: str | None = None,
) -> None:
    """`why`: added to the transaction's review reason."""
    values: dict[str, object] = {"status": status, "committed_at": committed_at}
    if why is not None:
        values["review_reason"] = sa.func.coalesce(transactions.c.review_reason + "; ", "") + why
    conn.execute(sa.update(transactions).where(transactions.c.id == txn_id).values(**values))


def _reversal_leg(conn: sa.Connection, movement_id: int) -> apply.Leg:
    src = locations.alias("src")
    dst = locations.alias("dst")
    reversal = movements.alias("reversal")
    query = (
        sa.select(
            movements.c.qty,
            movements.c.reverses,
            movements.c.occurred_at,
            transactions.c.body,
            items.c.id.label("item_id"),
            items.c.sku,
            items.c.gtin,
            items.c.reorder_point,
            sa.exists().where(reorder_points.c.item_id == items.c.id).label("located_points"),
            src.c.id.label("src_id"),
            src.c.code.label("src_code"),
            src.c.virtual.label("src_virtual"),
            src.c.path.label("src_path"),
            src.c.negative_stock.label("src_policy"),
            dst.c.id.label("dst_id"),
            dst.c.code.label("dst_code"),
            dst.c.virtual.label("dst_virtual"),
            dst.c.path.label("dst_path"),
            dst.c.negative_stock.label("dst_policy"),
            reversal.c.id.label("reversed_by"),
        )
        .join(transactions, transactions.c.id == movements.c.txn_id)
        .join(items, items.c.id == movements.c.item_id)
        .join(src, src.c.id == movements.c.from_location_id)
        .join(dst, dst.c.id == movements.c.to_location_id)
        .outerjoin(reversal, reversal.c.reverses == movements.c.id)
        .where(movements.c.id == movement_id)
    )
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"movement {movement_id} not found")
    if row.reversed_by is not None:
        raise StateError(f"movement {movement_id} is already reversed by {row.reversed_by}")
    if row.reverses is not None:
        raise StateError(f"movement {movement_id} is a reversal; post a new transaction instead")
    txn = StockTransaction.model_validate(row.body)
    at = apply.aware(row.occurred_at)  # a compensation's is its count's (late_counts)
    return apply.Leg(
        txn=txn,
        item=Item(
            row.item_id,
            row.sku,
            row.gtin,
            reorder_point=row.reorder_point,
            located_points=bool(row.located_points),
        ),
        src=Location(row.dst_id, row.dst_code, row.dst_virtual, row.dst_path, row.dst_policy),
        dst=Location(row.src_id, row.src_code, row.src_virtual, row.src_path, row.src_policy),
        qty=row.qty,
        reverses=movement_id,
        at=at if at != txn.occurred_at else None,
    )
