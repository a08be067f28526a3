"""Reorder suggestions and reorder points at locations: any key reads, an admin sets and
removes points (each write audited)."""

from dataclasses import asdict
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from aggregator.api.auth import Admin, Viewer
from aggregator.api.deps import EngineDep, LimitQuery, WriterDep
from aggregator.api.master_write import master_write
from aggregator.api.problems import problems
from aggregator.ledger import reorder, reorder_points
from aggregator.schema import locations
from stockwire.names import LocationCode

router = APIRouter(tags=["reorder"])
Within = Annotated[
    LocationCode | None,
    Query(description="only this location and everything below it"),
]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Qty = Annotated[int, Field(ge=0, le=2**53)]


class ReorderLine(BaseModel):
    sku: str | None
    gtin: str | None
    # scope "item": the ?within= asked about (None: the whole site); "location": the point's
    location: str | None
    on_hand: int
    reorder_point: int
    max_qty: int | None
    order_qty: int  # to reach max_qty (the reorder point when there is no max)
    scope: Literal["item", "location"]


class ReorderPointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    location: LocationCode
    reorder_point: Qty
    max_qty: Qty | None = None


class ReorderPoint(BaseModel):
    sku: str | None
    gtin: str | None
    location: str
    reorder_point: int
    max_qty: int | None
    on_hand: int  # the item's balance at the location, over lots
    raised: bool  # its low_stock alert is raised


@router.get("/reorder/suggestions", responses=problems(401, 403, 404, 422))
async def suggestions(
    engine: EngineDep, _: Viewer, within: Within = None, limit: LimitQuery = 1000
) -> list[ReorderLine]:
    """Items whose stock at physical locations (all lots; in `within` if given) is below their
    reorder point, then reorder points at locations (in `within`) whose balance is below them,
    with how many to order or bring to reach max_qty."""
    await _known(engine, within)
    rows = await reorder.suggestions(engine, within, limit)
    return [
        ReorderLine(
            sku=r.sku,
            gtin=r.gtin,
            location=r.location,
            on_hand=r.on_hand,
            reorder_point=r.reorder_point,
            max_qty=r.max_qty,
            order_qty=r.order_qty,
            scope="location" if r.scope == "location" else "item",
        )
        for r in rows
    ]


@router.get("/reorder/points", responses=problems(401, 403, 404, 422))
async def list_points(
    engine: EngineDep,
    _: Viewer,
    sku: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    within: Within = None,
    limit: LimitQuery = 1000,
) -> list[ReorderPoint]:
    """Reorder points at locations, with the balance there and whether low_stock is raised."""
    await _known(engine, within)
    return [
        ReorderPoint(**asdict(r)) for r in await reorder_points.points(engine, sku, within, limit)
    ]


@router.put(
    "/reorder/points",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def put_point(point: ReorderPointIn, writer: WriterDep, ctx: Admin) -> None:
    """Set an item's reorder point (and max) at a physical location: low_stock is raised once
    when its balance there falls below it and cleared when it is back (from the next posting
    that moves it there)."""
    place = (point.sku, point.location)
    levels = (point.reorder_point, point.max_qty)
    await master_write(
        ctx,
        status.HTTP_204_NO_CONTENT,
        writer,
        lambda conn, audit: reorder_points.put(conn, place, levels, audit),
    )


@router.delete(
    "/reorder/points",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 409, 422),
)
async def remove_point(
    sku: Annotated[str, Query(min_length=1, max_length=64)],
    location: Annotated[LocationCode, Query()],
    writer: WriterDep,
    ctx: Admin,
) -> None:
    await master_write(
        ctx,
        status.HTTP_204_NO_CONTENT,
        writer,
        lambda conn, audit: reorder_points.remove(conn, sku, location, audit),
    )


async def _known(engine: EngineDep, within: str | None) -> None:
    if within is None:
        return
    async with engine.connect() as conn:
        known = await conn.scalar(sa.select(locations.c.id).where(locations.c.code == within))
    if known is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"query.within: no location {within!r}")
