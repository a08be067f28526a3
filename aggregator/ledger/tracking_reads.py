"""Read side of lots and serials: lots with what is on hand of each, and where a serial is."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger.apply import aware
from aggregator.schema import (
    balances,
    item_gtins,
    items,
    locations,
    lots,
    movements,
    serial_moves,
    serials,
    transactions,
)


@dataclass(frozen=True, slots=True)
class LotRow:
    sku: str | None
    gtin: str | None
    lot: str
    expiry: date | None
    first_seen_at: datetime
    on_hand: dict[str, int]  # physical location -> qty (non-zero)


@dataclass(frozen=True, slots=True)
class LotFilter:
    sku: str | None = None
    gtin: str | None = None  # any GTIN of the item
    expiring_before: date | None = None  # lots with an expiry before this day


@dataclass(frozen=True, slots=True)
class SerialMoveRow:
    movement_id: int
    txn_id: UUID
    kind: str
    from_location: str
    to_location: str
    occurred_at: datetime
    committed_at: datetime
    reverses: int | None


@dataclass(frozen=True, slots=True)
class SerialRow:
    serial: str
    sku: str | None
    gtin: str | None
    location: str
    state: str
    txn_id: UUID
    updated_at: datetime
    history: list[SerialMoveRow]  # newest first


def _lots_query(where: LotFilter, limit: int) -> sa.Select[Any]:
    query = sa.select(lots, items.c.sku, items.c.gtin).join(items, items.c.id == lots.c.item_id)
    if where.sku is not None:
        query = query.where(items.c.sku == where.sku)
    if where.gtin is not None:
        of_gtin = sa.select(item_gtins.c.item_id).where(item_gtins.c.gtin == where.gtin)
        query = query.where(lots.c.item_id.in_(of_gtin.scalar_subquery()))
    if where.expiring_before is not None:
        query = query.where(lots.c.expiry < where.expiring_before)
    # Soonest expiry first (first expired, first out); lots without one last.
    order = (lots.c.expiry.is_(None), lots.c.expiry, lots.c.item_id, lots.c.lot)
    return query.order_by(*order).limit(limit)


async def lot_rows(engine: AsyncEngine, where: LotFilter, limit: int) -> list[LotRow]:
    async with engine.connect() as conn:
        found = (await conn.execute(_lots_query(where, limit))).all()
        if not found:
            return []
        keys = [(r.item_id, r.lot) for r in found]
        query = (
            sa.select(balances.c.item_id, balances.c.lot, locations.c.code, balances.c.qty)
            .join(locations, locations.c.id == balances.c.location_id)
            .where(
                sa.tuple_(balances.c.item_id, balances.c.lot).in_(keys),
                balances.c.qty != 0,
                locations.c.virtual == sa.false(),
            )
            .order_by(locations.c.code)
        )
        on_hand: defaultdict[tuple[int, str], dict[str, int]] = defaultdict(dict)
        for r in await conn.execute(query):
            on_hand[(r.item_id, r.lot)][r.code] = r.qty
    return [
        LotRow(r.sku, r.gtin, r.lot, r.expiry, aware(r.first_seen_at), on_hand[(r.item_id, r.lot)])
        for r in found
    ]


def _units_query(serial: str, sku: str | None) -> sa.Select[Any]:
    query = (
        sa.select(serials, items.c.sku, items.c.gtin, locations.c.code)
        .join(items, items.c.id == serials.c.item_id)
        .join(locations, locations.c.id == serials.c.location_id)
        .where(serials.c.serial == serial)
        .order_by(serials.c.item_id)
    )
    return query if sku is None else query.where(items.c.sku == sku)


def _history_query(item_id: int, serial: str, limit: int) -> sa.Select[Any]:
    src = locations.alias("src")
    dst = locations.alias("dst")
    return (
        sa.select(
            serial_moves.c.movement_id,
            serial_moves.c.txn_id,
            transactions.c.kind,
            src.c.code.label("src"),
            dst.c.code.label("dst"),
            serial_moves.c.occurred_at,
            serial_moves.c.committed_at,
            movements.c.reverses,
        )
        .join(transactions, transactions.c.id == serial_moves.c.txn_id)
        .join(movements, movements.c.id == serial_moves.c.movement_id)
        .join(src, src.c.id == serial_moves.c.from_location_id)
        .join(dst, dst.c.id == serial_moves.c.to_location_id)
        .where(serial_moves.c.item_id == item_id, serial_moves.c.serial == serial)
        .order_by(serial_moves.c.movement_id.desc())
        .limit(limit)
    )


async def serial_rows(
    engine: AsyncEngine, serial: str, sku: str | None, limit: int
) -> list[SerialRow]:
    """Each unit with this serial number (one per item that has it), with its last moves."""
    out: list[SerialRow] = []
    async with engine.connect() as conn:
        for r in (await conn.execute(_units_query(serial, sku))).all():
            moves = await conn.execute(_history_query(r.item_id, serial, limit))
            history = [
                SerialMoveRow(
                    m.movement_id,
                    m.txn_id,
                    m.kind,
                    m.src,
                    m.dst,
                    aware(m.occurred_at),
                    aware(m.committed_at),
                    m.reverses,
                )
                for m in moves
            ]
            out.append(
                SerialRow(
                    serial, r.sku, r.gtin, r.code, r.state, r.txn_id, aware(r.updated_at), history
                )
            )
    return out
