"""Reorder: an item whose stock falls below its reorder point raises a low_stock alert once,
and clears it when the stock is back at or above it.

The stock is the item's balance summed over every physical location and lot (items carry one
reorder point each, not one per location). Whether an item is raised is kept in reorder_alerts
(a row while it is low), so a restart neither raises it again nor forgets to clear it. One query
per posting reads the touched items that have a reorder point (as the posting read its items),
their stock and their state; a posting that touches none runs no query.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger.location_admin import subtree_ids
from aggregator.schema import balances, items, locations, reorder_alerts


@dataclass(frozen=True, slots=True)
class LowStock:
    """A change of an item's low_stock state: raised (now below) or cleared."""

    sku: str | None
    gtin: str | None
    qty: int  # on hand, over physical locations
    reorder_point: int
    raised: bool


@dataclass(frozen=True, slots=True)
class Suggestion:
    sku: str | None
    gtin: str | None
    location: str | None  # the ?within= asked about, None: the whole site
    on_hand: int
    reorder_point: int
    max_qty: int | None
    order_qty: int  # up to max_qty (to the reorder point when the item has no max)


def on_hand() -> sa.ScalarSelect[Any]:
    """The stock of the item of the outer query's row over physical locations (evaluated only
    for the rows the outer query keeps: items with a reorder point)."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(balances.c.qty), 0))
        .join(locations, locations.c.id == balances.c.location_id)
        .where(locations.c.virtual == sa.false(), balances.c.item_id == items.c.id)
        .scalar_subquery()
    )


def changes(conn: sa.Connection, item_ids: Iterable[int], now: datetime) -> list[LowStock]:
    """Raise or clear the items among `item_ids` whose state changes (after the balances)."""
    ids = sorted(set(item_ids))
    if not ids:
        return []
    query = (
        sa.select(
            items.c.id,
            items.c.sku,
            items.c.gtin,
            items.c.reorder_point,
            on_hand().label("qty"),
            reorder_alerts.c.item_id.label("raised"),
        )
        .outerjoin(reorder_alerts, reorder_alerts.c.item_id == items.c.id)
        .where(items.c.id.in_(ids), items.c.reorder_point.isnot(None))
    )
    found: list[LowStock] = []
    raise_ids: list[dict[str, Any]] = []
    clear_ids: list[int] = []
    for r in conn.execute(query):
        low = int(r.qty) < r.reorder_point
        if low == (r.raised is not None):
            continue
        found.append(LowStock(r.sku, r.gtin, int(r.qty), r.reorder_point, low))
        if low:
            raise_ids.append({"item_id": r.id, "raised_at": now, "qty": int(r.qty)})
        else:
            clear_ids.append(r.id)
    if raise_ids:
        conn.execute(sa.insert(reorder_alerts), raise_ids)
    if clear_ids:
        conn.execute(sa.delete(reorder_alerts).where(reorder_alerts.c.item_id.in_(clear_ids)))
    return found


async def suggestions(engine: AsyncEngine, within: str | None, limit: int) -> list[Suggestion]:
    """Items below their reorder point (counting the stock in the subtree `within` names, if
    given), with how many to order to reach max_qty."""
    stocked = (
        sa.select(balances.c.item_id, balances.c.qty)
        .join(locations, locations.c.id == balances.c.location_id)
        .where(locations.c.virtual == sa.false())
    )
    if within is not None:
        stocked = stocked.where(balances.c.location_id.in_(subtree_ids(within)))
    here = stocked.subquery("here")
    query = (
        sa.select(
            items.c.sku,
            items.c.gtin,
            items.c.reorder_point,
            items.c.max_qty,
            sa.func.coalesce(sa.func.sum(here.c.qty), 0).label("qty"),
        )
        .outerjoin(here, here.c.item_id == items.c.id)
        .where(items.c.reorder_point.isnot(None))
        .group_by(items.c.id, items.c.sku, items.c.gtin, items.c.reorder_point, items.c.max_qty)
        .having(sa.func.coalesce(sa.func.sum(here.c.qty), 0) < items.c.reorder_point)
        .order_by(items.c.sku, items.c.gtin)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        Suggestion(
            r.sku,
            r.gtin,
            within,
            int(r.qty),
            r.reorder_point,
            r.max_qty,
            (r.max_qty if r.max_qty is not None else r.reorder_point) - int(r.qty),
        )
        for r in rows
    ]
