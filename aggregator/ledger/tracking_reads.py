"""Read side of lots and serials: lots with what is on hand of each, and where a serial is."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger.apply import aware
from aggregator.ledger.unit_moves import history_query
from aggregator.schema import (
    balances,
    item_gtins,
    items,
    locations,
    lots,
    serial_moves,
    serials,
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


async def serial_rows(
    engine: AsyncEngine, serial: str, sku: str | None, limit: int
) -> list[SerialRow]:
    """Each unit with this serial number (one per item that has it), with its last moves."""
    out: list[SerialRow] = []
    async with engine.connect() as conn:
        for r in (await conn.execute(_units_query(serial, sku))).all():
            unit = (serial_moves.c.item_id == r.item_id) & (serial_moves.c.serial == serial)
            moves = await conn.execute(history_query(serial_moves, unit, limit))
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
