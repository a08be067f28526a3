from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from aggregator.api.auth import READS
from aggregator.api.deps import EngineDep, LimitQuery, UtcTime
from aggregator.api.models import StockLine
from aggregator.api.problems import problems
from aggregator.ledger import as_of as as_of_
from aggregator.ledger import reads

router = APIRouter(tags=["stock"], dependencies=READS, responses=problems(401, 403, 404, 422))
# Filters take the shapes the ledger stores (no control characters: PostgreSQL refuses NUL).
_SKU = r"^[^\s\x00-\x1f\x7f]{1,64}$"
_GTIN = r"^[0-9]{14}$"
_LOCATION = r"^@?[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"
_LOT = r"^[^\x00-\x1f\x7f]{1,20}$"


@router.get("/stock")
async def stock(
    engine: EngineDep,
    sku: Annotated[str | None, Query(pattern=_SKU)] = None,
    gtin: Annotated[str | None, Query(pattern=_GTIN)] = None,
    location: Annotated[str | None, Query(pattern=_LOCATION)] = None,
    lot: Annotated[str | None, Query(pattern=_LOT)] = None,
    include_virtual: Annotated[bool, Query(description="also show @virtual locations")] = False,
    as_of: Annotated[
        UtcTime | None,
        Query(description="RFC 3339: balances from the movements that happened by then"),
    ] = None,
    known_at: Annotated[
        UtcTime | None,
        Query(description="RFC 3339: balances from the movements committed by then"),
    ] = None,
    within: Annotated[
        str | None, Query(pattern=_LOCATION, description="this location and all below it")
    ] = None,
    limit: LimitQuery = 1000,
) -> list[StockLine]:
    """Non-zero balances; physical locations only unless include_virtual.

    Today's balances, or with as_of (event time) and/or known_at (commit time) the sum of the
    movements that happened / were committed by then: a movement posted late counts at the
    time it happened for as_of, and not at all for a known_at before it was committed.

    A sku, gtin or location the ledger has never seen is a 404 naming it (scanned items are
    known by their GTIN only); one it knows with no stock now is an empty list.
    """
    where = reads.StockFilter(sku, gtin, location, lot, include_virtual, within)
    if as_of is None and known_at is None:
        rows = await reads.stock(engine, where, limit)
    else:
        rows = await as_of_.stock_as_of(engine, where, as_of_.AsOf(as_of, known_at), limit)
    if not rows and (unknown := await reads.unknown_filter(engine, where)) is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _never_seen(*unknown))
    return [
        StockLine(
            sku=r.sku, gtin=r.gtin, location=r.location, virtual=r.virtual, lot=r.lot, qty=r.qty
        )
        for r in rows
    ]


def _never_seen(name: str, value: str) -> str:
    if name in ("location", "within"):
        return f"query.{name}: the ledger knows no location {value!r}"
    detail = f"query.{name}: the ledger knows no item with {name} {value!r}"
    if name == "sku":
        detail += "; scanned items are known by their GTIN only: try ?gtin=<14 digits>"
    return detail
