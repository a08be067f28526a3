"""Read side of the ledger for the API and tests: plain queries, dataclass rows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, AuditRow
from aggregator.ledger.apply import aware, utc
from aggregator.ledger.location_admin import subtree_ids
from aggregator.schema import (
    audit_log,
    balances,
    dead_letters,
    edges,
    item_gtins,
    items,
    locations,
    movements,
    rejected_txns,
    transactions,
)
from stockwire.events import Movement
from stockwire.txn import TxnKind


@dataclass(frozen=True, slots=True)
class StockRow:
    sku: str | None
    gtin: str | None
    location: str
    virtual: bool
    lot: str | None
    qty: int


@dataclass(frozen=True, slots=True)
class StockFilter:
    sku: str | None = None
    gtin: str | None = None
    location: str | None = None
    lot: str | None = None
    include_virtual: bool = False
    within: str | None = None  # a location: it and everything below it


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    topic: str
    reason: str
    payload: bytes  # a capped prefix
    payload_bytes: int
    payload_sha256: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RejectedRow:
    id: int
    txn_id: UUID
    edge: str
    reason: str
    body: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class TxnListRow:
    """A transaction as GET /transactions lists it."""

    id: UUID
    edge: str
    seq: int
    kind: str
    status: str
    body: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    committed_at: datetime | None
    review_reason: str | None
    load_id: UUID | None

    @classmethod
    def of(cls, r: sa.Row[Any]) -> Self:
        return cls(
            id=r.id,
            edge=r.edge,
            seq=r.seq,
            kind=r.kind,
            status=r.status,
            body=r.body,
            occurred_at=aware(r.occurred_at),
            received_at=aware(r.received_at),
            committed_at=aware(r.committed_at) if r.committed_at is not None else None,
            review_reason=r.review_reason,
            load_id=r.load_id,
        )


@dataclass(frozen=True, slots=True)
class TxnRow:
    """One transaction with its movements (GET /transactions/{id})."""

    txn: TxnListRow
    movements: list[Movement]


async def stock(engine: AsyncEngine, where: StockFilter, limit: int) -> list[StockRow]:
    query = (
        sa.select(items.c.sku, items.c.gtin, locations.c.code, locations.c.virtual)
        .add_columns(balances.c.lot, balances.c.qty)
        .join(items, items.c.id == balances.c.item_id)
        .join(locations, locations.c.id == balances.c.location_id)
        .where(balances.c.qty != 0)
        .order_by(items.c.sku, items.c.gtin, locations.c.code, balances.c.lot)
        .limit(limit)
    )
    query = _filtered(query, where)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return [StockRow(r.sku, r.gtin, r.code, r.virtual, r.lot or None, r.qty) for r in rows]


def _filtered(query: sa.Select[Any], where: StockFilter) -> sa.Select[Any]:
    if where.sku is not None:
        query = query.where(items.c.sku == where.sku)
    if where.gtin is not None:  # any GTIN of the item: its base unit's or a pack's
        query = query.where(items.c.id.in_(gtin_items(where.gtin)))
    if where.location is not None:
        query = query.where(locations.c.code == where.location)
    if where.lot is not None:
        query = query.where(balances.c.lot == where.lot)
    if where.within is not None:
        query = query.where(balances.c.location_id.in_(subtree_ids(where.within)))
    if not where.include_virtual:
        query = query.where(locations.c.virtual == sa.false())
    return query


def gtin_items(gtin: str) -> sa.Select[Any]:
    return sa.select(item_gtins.c.item_id).where(item_gtins.c.gtin == gtin)


def _movement_query() -> sa.Select[Any]:
    src = locations.alias("src")
    dst = locations.alias("dst")
    return (
        sa.select(
            movements,
            transactions.c.edge,
            transactions.c.seq,
            transactions.c.kind,
            transactions.c.load_id,
            items.c.sku,
            items.c.gtin,
            src.c.code.label("src"),
            dst.c.code.label("dst"),
        )
        .join(transactions, transactions.c.id == movements.c.txn_id)
        .join(items, items.c.id == movements.c.item_id)
        .join(src, src.c.id == movements.c.from_location_id)
        .join(dst, dst.c.id == movements.c.to_location_id)
        .order_by(movements.c.id)
    )


def _movement(r: sa.Row[Any]) -> Movement:
    return Movement(
        id=r.id,
        txn_id=r.txn_id,
        edge=r.edge,
        seq=r.seq,
        kind=TxnKind(r.kind),
        sku=r.sku,
        gtin=r.gtin,
        lot=r.lot or None,
        qty=r.qty,
        from_location=r.src,
        to_location=r.dst,
        occurred_at=aware(r.occurred_at),
        committed_at=aware(r.committed_at),
        reverses=r.reverses,
        load_id=r.load_id,
    )


@dataclass(frozen=True, slots=True)
class EventWindow:
    """Movements that happened in [since, before): event time, in UTC; None = open."""

    since: datetime | None = None
    before: datetime | None = None


async def movements_after(
    engine: AsyncEngine,
    after: int,
    limit: int,
    load_id: UUID | None = None,
    window: EventWindow = EventWindow(),
    within: str | None = None,
) -> list[Movement]:
    """Movements with id > after; only those of one load's transactions if load_id is given,
    only those that happened in `window` if it is bounded (a filter on the id-ordered scan),
    only those from or to a location of the subtree `within` names."""
    query = _movement_query().where(movements.c.id > after).limit(limit)
    if load_id is not None:
        query = query.where(transactions.c.load_id == load_id)
    if window.since is not None:
        query = query.where(movements.c.occurred_at >= utc(window.since))
    if window.before is not None:
        query = query.where(movements.c.occurred_at < utc(window.before))
    if within is not None:
        below = subtree_ids(within)
        query = query.where(
            sa.or_(movements.c.from_location_id.in_(below), movements.c.to_location_id.in_(below))
        )
    async with engine.connect() as conn:
        return [_movement(r) for r in await conn.execute(query)]


async def dead_letters_after(engine: AsyncEngine, after: int, limit: int) -> list[DeadLetterRow]:
    query = (
        sa.select(dead_letters)
        .where(dead_letters.c.id > after)
        .order_by(dead_letters.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [
            DeadLetterRow(
                r.id,
                r.topic,
                r.reason,
                r.payload,
                r.payload_bytes,
                r.payload_sha256,
                aware(r.received_at),
            )
            for r in await conn.execute(query)
        ]


async def rejected_after(engine: AsyncEngine, after: int, limit: int) -> list[RejectedRow]:
    query = (
        sa.select(rejected_txns)
        .where(rejected_txns.c.id > after)
        .order_by(rejected_txns.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [
            RejectedRow(r.id, r.txn_id, r.edge, r.reason, r.body, aware(r.received_at))
            for r in await conn.execute(query)
        ]


async def audit_after(engine: AsyncEngine, after: int, limit: int) -> list[AuditRow]:
    query = sa.select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        fields = AuditEntry.__dataclass_fields__
        return [
            AuditRow(r.id, AuditEntry(**{f: getattr(r, f) for f in fields} | {"at": aware(r.at)}))
            for r in rows
        ]


async def transaction(engine: AsyncEngine, txn_id: UUID) -> TxnRow | None:
    async with engine.connect() as conn:
        query = sa.select(transactions).where(transactions.c.id == txn_id)
        r = (await conn.execute(query)).one_or_none()
        if r is None:
            return None
        moved = await conn.execute(_movement_query().where(movements.c.txn_id == txn_id))
        return TxnRow(TxnListRow.of(r), [_movement(m) for m in moved])


async def transactions_after(
    engine: AsyncEngine, status: str | None, after: UUID | None, limit: int
) -> list[TxnListRow]:
    """Transactions with id > after by id (UUIDv7: the edges' clocks), of one status or all."""
    query = transactions_query(status, after, limit)
    async with engine.connect() as conn:
        return [TxnListRow.of(r) for r in await conn.execute(query)]


def transactions_query(status: str | None, after: UUID | None, limit: int) -> sa.Select[Any]:
    query = sa.select(transactions).order_by(transactions.c.id).limit(limit)
    if status is not None:
        query = query.where(transactions.c.status == status)
    if status is not None and status != "posted":
        # As ix_transactions_not_posted is declared, literally: SQLite's planner then uses it.
        query = query.where(transactions.c.status != sa.literal_column("'posted'"))
    if after is not None:
        query = query.where(transactions.c.id > after)
    return query


async def unknown_filter(engine: AsyncEngine, where: StockFilter) -> tuple[str, str] | None:
    """The first of sku, gtin, location that names nothing the ledger has ever seen, with the
    value: (parameter, value). None when each names something (its stock may just be zero)."""
    checks = (
        ("sku", where.sku, items.c.sku),
        ("gtin", where.gtin, item_gtins.c.gtin),
        ("location", where.location, locations.c.code),
        ("within", where.within, locations.c.code),
    )
    async with engine.connect() as conn:
        for name, value, column in checks:
            if value is None:
                continue
            found = await conn.execute(sa.select(1).where(column == value).limit(1))
            if found.first() is None:
                return name, value
    return None


async def item_totals(engine: AsyncEngine) -> dict[int, int]:
    """Sum over all locations per item: the double-entry invariant says every value is 0."""
    query = sa.select(balances.c.item_id, sa.func.sum(balances.c.qty)).group_by(balances.c.item_id)
    async with engine.connect() as conn:
        return {r[0]: int(r[1]) for r in await conn.execute(query)}


async def ping(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(1))).scalar() == 1


@dataclass(frozen=True, slots=True)
class EdgeRow:
    edge: str
    state: str | None
    last_seq: int | None
    last_seen: datetime


async def edges_of(engine: AsyncEngine, site: str) -> list[EdgeRow]:
    query = sa.select(edges).where(edges.c.site == site).order_by(edges.c.edge)
    async with engine.connect() as conn:
        return [
            EdgeRow(r.edge, r.state, r.last_seq, aware(r.last_seen))
            for r in await conn.execute(query)
        ]
