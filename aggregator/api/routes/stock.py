from typing import Annotated

from fastapi import APIRouter, Query

from aggregator.api.deps import EngineDep, LimitQuery
from aggregator.api.models import StockLine
from aggregator.ledger import reads

router = APIRouter(tags=["stock"])


@router.get("/stock")
async def stock(
    engine: EngineDep,
    sku: str | None = None,
    gtin: str | None = None,
    location: str | None = None,
    lot: str | None = None,
    include_virtual: Annotated[bool, Query(description="also show @virtual locations")] = False,
    limit: LimitQuery = 1000,
) -> list[StockLine]:
    """Non-zero balances; physical locations only unless include_virtual."""
    where = reads.StockFilter(sku, gtin, location, lot, include_virtual)
    rows = await reads.stock(engine, where, limit)
    return [
        StockLine(
            sku=r.sku, gtin=r.gtin, location=r.location, virtual=r.virtual, lot=r.lot, qty=r.qty
        )
        for r in rows
    ]
