"""Balances at a past time, summed from the movements (sum in - sum out): bitemporal.

`event` (as_of) counts movements that happened by then (occurred_at), wherever they were
committed; `known` (known_at) counts those committed by then (committed_at). A movement replayed
hours late shows at its event time for `event`, and not at all for a `known` before its commit.
A reversal keeps the event time of the movement it undoes: by event time the mistake never
happened, by commit time it was there until the reversal was committed.

One query: the inflows and the outflows (found through ix_movements_item_time when an item is
named), grouped per (item, location, lot).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger.apply import utc
from aggregator.ledger.location_admin import subtree_ids
from aggregator.ledger.reads import StockFilter, StockRow, gtin_items
from aggregator.schema import items, locations, movements


@dataclass(frozen=True, slots=True)
class AsOf:
    event: datetime | None = None  # movements with occurred_at <= event
    known: datetime | None = None  # movements with committed_at <= known


async def stock_as_of(
    engine: AsyncEngine, where: StockFilter, at: AsOf, limit: int
) -> list[StockRow]:
    """Non-zero balances as `at` sees them, in GET /stock's order and with its filters."""
    async with engine.connect() as conn:
        rows = await conn.execute(_query(where, at, limit))
        return [StockRow(r.sku, r.gtin, r.code, r.virtual, r.lot or None, int(r.qty)) for r in rows]


def _query(where: StockFilter, at: AsOf, limit: int) -> sa.Select[Any]:
    inflow = _side(movements.c.to_location_id, movements.c.qty, where, at)
    outflow = _side(movements.c.from_location_id, -movements.c.qty, where, at)
    legs = sa.union_all(inflow, outflow).subquery("legs")
    total = sa.func.sum(legs.c.qty)
    summed = (
        sa.select(legs.c.item_id, legs.c.location_id, legs.c.lot, total.label("qty"))
        .group_by(legs.c.item_id, legs.c.location_id, legs.c.lot)
        .having(total != 0)
        .subquery("summed")
    )
    query = (
        sa.select(items.c.sku, items.c.gtin, locations.c.code, locations.c.virtual)
        .add_columns(summed.c.lot, summed.c.qty)
        .join(items, items.c.id == summed.c.item_id)
        .join(locations, locations.c.id == summed.c.location_id)
        .order_by(items.c.sku, items.c.gtin, locations.c.code, summed.c.lot)
        .limit(limit)
    )
    if not where.include_virtual:
        query = query.where(locations.c.virtual == sa.false())
    return query


def _side(
    place: sa.ColumnElement[int], qty: sa.ColumnElement[int], where: StockFilter, at: AsOf
) -> sa.Select[Any]:
    """One side of every movement in range: (item, its location on this side, lot, +-qty)."""
    query = sa.select(
        movements.c.item_id, place.label("location_id"), movements.c.lot, qty.label("qty")
    )
    if at.event is not None:
        query = query.where(movements.c.occurred_at <= utc(at.event))
    if at.known is not None:
        query = query.where(movements.c.committed_at <= utc(at.known))
    if where.sku is not None:
        query = query.where(movements.c.item_id.in_(_ids(items, items.c.sku == where.sku)))
    if where.gtin is not None:
        query = query.where(movements.c.item_id.in_(gtin_items(where.gtin)))
    if where.location is not None:
        query = query.where(place.in_(_ids(locations, locations.c.code == where.location)))
    if where.lot is not None:
        query = query.where(movements.c.lot == where.lot)
    if where.within is not None:
        query = query.where(place.in_(subtree_ids(where.within)))
    return query


def _ids(table: sa.Table, named: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(table.c.id).where(named)
