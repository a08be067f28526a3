"""Reorder points at locations (a pick face, a bin): an admin sets and removes them (each write
audited), any key lists them. Their low_stock alerts are raised and cleared as postings move
the balance there (aggregator/ledger/reorder.py)."""

from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, record
from aggregator.errors import FieldError, NotFoundError
from aggregator.ledger.location_admin import subtree_ids
from aggregator.ledger.reorder import on_hand_there
from aggregator.schema import items, locations, reorder_points


@dataclass(frozen=True, slots=True)
class PointRow:
    sku: str | None
    gtin: str | None
    location: str
    reorder_point: int
    max_qty: int | None
    on_hand: int  # the item's balance at the location, over lots
    raised: bool  # its low_stock alert is raised


def put(
    conn: sa.Connection,
    place: tuple[str, str],  # sku, location code
    levels: tuple[int, int | None],  # reorder point, max qty
    audit: AuditEntry,
) -> None:
    """Set the point (a new one, or new levels for one that keeps its alert state)."""
    (sku, code), (point, max_qty) = place, levels
    if max_qty is not None and max_qty < point:
        raise FieldError("body.max_qty", f"max_qty {max_qty} is below reorder_point {point}")
    key = _key(conn, sku, code)
    values = {"reorder_point": point, "max_qty": max_qty}
    done = conn.execute(sa.update(reorder_points).where(_at(key)).values(**values))
    if done.rowcount == 0:
        conn.execute(sa.insert(reorder_points).values(item_id=key[0], location_id=key[1], **values))
    record(conn, replace(audit, target=f"{sku} at {code}"))


def remove(conn: sa.Connection, sku: str, code: str, audit: AuditEntry) -> None:
    if conn.execute(sa.delete(reorder_points).where(_at(_key(conn, sku, code)))).rowcount == 0:
        raise NotFoundError(f"item {sku} has no reorder point at {code}")
    record(conn, replace(audit, target=f"{sku} at {code}"))


async def points(
    engine: AsyncEngine, sku: str | None, within: str | None, limit: int
) -> list[PointRow]:
    query = (
        sa.select(
            reorder_points,
            items.c.sku,
            items.c.gtin,
            locations.c.code,
            on_hand_there().label("qty"),
        )
        .join(items, items.c.id == reorder_points.c.item_id)
        .join(locations, locations.c.id == reorder_points.c.location_id)
        .order_by(items.c.sku, items.c.gtin, locations.c.code)
        .limit(limit)
    )
    if sku is not None:
        query = query.where(items.c.sku == sku)
    if within is not None:
        query = query.where(reorder_points.c.location_id.in_(subtree_ids(within)))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        PointRow(
            r.sku, r.gtin, r.code, r.reorder_point, r.max_qty, int(r.qty), r.raised_at is not None
        )
        for r in rows
    ]


def _key(conn: sa.Connection, sku: str, code: str) -> tuple[int, int]:
    item_id = conn.scalar(sa.select(items.c.id).where(items.c.sku == sku))
    if item_id is None:
        raise NotFoundError(f"no item with sku {sku!r}")
    place = conn.execute(
        sa.select(locations.c.id, locations.c.virtual).where(locations.c.code == code)
    ).one_or_none()
    if place is None:
        raise NotFoundError(f"no location {code!r}")
    if place.virtual:
        raise FieldError("body.location", f"{code} is virtual: it holds no stock to reorder")
    return item_id, place.id


def _at(key: tuple[int, int]) -> sa.ColumnElement[bool]:
    return (reorder_points.c.item_id == key[0]) & (reorder_points.c.location_id == key[1])
