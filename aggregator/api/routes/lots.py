from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from aggregator.api.auth import READS
from aggregator.api.deps import EngineDep, LimitQuery
from aggregator.api.problems import problems
from aggregator.api.routes.stock import _GTIN, _SKU, _never_seen
from aggregator.api.tracking_models import Lot, OnHand
from aggregator.ledger import reads, tracking_reads
from stockwire.wire_types import WireDate

router = APIRouter(tags=["lots"], dependencies=READS, responses=problems(401, 403, 404, 422))


@router.get("/lots")
async def list_lots(
    engine: EngineDep,
    sku: Annotated[str | None, Query(pattern=_SKU)] = None,
    gtin: Annotated[str | None, Query(pattern=_GTIN, description="any GTIN of the item")] = None,
    expiring_before: Annotated[
        WireDate | None, Query(description="YYYY-MM-DD: lots whose expiry is before this day")
    ] = None,
    limit: LimitQuery = 1000,
) -> list[Lot]:
    """Lots, soonest expiry first (those without one last), with what is on hand of each at
    every physical location. A sku or gtin the ledger has never seen is a 404 naming it."""
    where = tracking_reads.LotFilter(sku, gtin, expiring_before)
    rows = await tracking_reads.lot_rows(engine, where, limit)
    if not rows:
        unknown = await reads.unknown_filter(engine, reads.StockFilter(sku=sku, gtin=gtin))
        if unknown is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _never_seen(*unknown))
    return [
        Lot(
            sku=r.sku,
            gtin=r.gtin,
            lot=r.lot,
            expiry=r.expiry,
            first_seen_at=r.first_seen_at,
            qty=sum(r.on_hand.values()),
            on_hand=[OnHand(location=code, qty=qty) for code, qty in r.on_hand.items()],
        )
        for r in rows
    ]
