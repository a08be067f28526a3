"""Reorder suggestions: any key reads."""

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from aggregator.api.auth import READS
from aggregator.api.deps import EngineDep, LimitQuery
from aggregator.api.problems import problems
from aggregator.ledger import reorder
from aggregator.schema import locations
from stockwire.names import LocationCode

router = APIRouter(tags=["reorder"], dependencies=READS, responses=problems(401, 403, 404, 422))


class ReorderLine(BaseModel):
    sku: str | None
    gtin: str | None
    location: str | None  # the ?within= asked about; None: the whole site
    on_hand: int
    reorder_point: int
    max_qty: int | None
    order_qty: int  # to reach max_qty (the reorder point when the item has no max)


@router.get("/reorder/suggestions")
async def suggestions(
    engine: EngineDep,
    within: Annotated[
        LocationCode | None,
        Query(description="count only the stock at this location and everything below it"),
    ] = None,
    limit: LimitQuery = 1000,
) -> list[ReorderLine]:
    """Items whose stock at physical locations (all lots) is below their reorder point, with
    how many to order to reach max_qty."""
    if within is not None:
        async with engine.connect() as conn:
            known = await conn.scalar(sa.select(locations.c.id).where(locations.c.code == within))
        if known is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"query.within: no location {within!r}")
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
        )
        for r in rows
    ]
