"""Reorder: an item whose stock falls below its reorder point raises a low_stock alert once,
and clears it when the stock is back at or above it; so does an item at a location with a reorder
point of its own there (a pick face, a bin: reorder_points), counting that location's balance.

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
from aggregator.schema import balances, items, locations, reorder_alerts, reorder_points


@dataclass(frozen=True, slots=True)
class LowStock:
    """A change of an item's low_stock state: raised (now below) or cleared."""

    sku: str | None
    gtin: str | None
    qty: int  # on hand, over physical locations (at `location`, for a location's point)
    reorder_point: int
    raised: bool
    location: str | None = None  # None: the item's site-wide point


@dataclass(frozen=True, slots=True)
class Suggestion:
    sku: str | None
    gtin: str | None
    # scope "item": the ?within= asked about (None: the whole site); "location": the point's
    location: str | None
    on_hand: int
    reorder_point: int
    max_qty: int | None
    order_qty: int  # up to max_qty (to the reorder point when the item has no max)
    scope: str = "item"  # "item": the item's own point; "location": a point at `location`


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


def on_hand_there() -> sa.ScalarSelect[Any]:
    """The balance (over lots) at the reorder_points row of the outer query."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(balances.c.qty), 0))
        .where(
            balances.c.item_id == reorder_points.c.item_id,
            balances.c.location_id == reorder_points.c.location_id,
        )
        .scalar_subquery()
    )


def location_changes(
    conn: sa.Connection, touched: Iterable[tuple[int, int]], now: datetime
) -> list[LowStock]:
    """Raise or clear the reorder points at the (item id, location id) pairs `touched` whose
    state changes (after the balances; one query, for items that have such points)."""
    keys = sorted(set(touched))
    if not keys:
        return []
    here = on_hand_there()
    query = (
        sa.select(reorder_points, items.c.sku, items.c.gtin, locations.c.code, here.label("qty"))
        .join(items, items.c.id == reorder_points.c.item_id)
        .join(locations, locations.c.id == reorder_points.c.location_id)
        .where(sa.tuple_(reorder_points.c.item_id, reorder_points.c.location_id).in_(keys))
        .order_by(reorder_points.c.item_id, reorder_points.c.location_id)
    )
    found: list[LowStock] = []
    for r in conn.execute(query).all():
        low = int(r.qty) < r.reorder_point
        if low == (r.raised_at is not None):
            continue
        found.append(LowStock(r.sku, r.gtin, int(r.qty), r.reorder_point, low, r.code))
        conn.execute(
            sa.update(reorder_points)
            .where(
                reorder_points.c.item_id == r.item_id,
                reorder_points.c.location_id == r.location_id,
            )
            .values(raised_at=now if low else None, raised_qty=int(r.qty) if low else None)
        )
    return found


async def suggestions(engine: AsyncEngine, within: str | None, limit: int) -> list[Suggestion]:
    """Items below their reorder point (counting the stock in the subtree `within` names, if
    given), then the reorder points at locations (in that subtree) whose balance is below them,
    with how many to order (or bring) to reach max_qty."""
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
        placed = (await conn.execute(_placed_below(within, limit - len(rows)))).all()
    return [
        *(
            Suggestion(r.sku, r.gtin, within, int(r.qty), r.reorder_point, r.max_qty, _to_max(r))
            for r in rows
        ),
        *(
            Suggestion(
                r.sku,
                r.gtin,
                r.code,
                int(r.qty),
                r.reorder_point,
                r.max_qty,
                _to_max(r),
                "location",
            )
            for r in placed
        ),
    ]


def _placed_below(within: str | None, limit: int) -> sa.Select[Any]:
    """The reorder points at locations (in `within`'s subtree) whose balance is below them."""
    here = on_hand_there()
    query = (
        sa.select(
            items.c.sku,
            items.c.gtin,
            locations.c.code,
            reorder_points.c.reorder_point,
            reorder_points.c.max_qty,
            here.label("qty"),
        )
        .join(items, items.c.id == reorder_points.c.item_id)
        .join(locations, locations.c.id == reorder_points.c.location_id)
        .where(here < reorder_points.c.reorder_point)
        .order_by(items.c.sku, items.c.gtin, locations.c.code)
        .limit(max(limit, 0))
    )
    if within is not None:
        query = query.where(reorder_points.c.location_id.in_(subtree_ids(within)))
    return query


def _to_max(r: Any) -> int:
    return int((r.max_qty if r.max_qty is not None else r.reorder_point) - int(r.qty))
