from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from aggregator.api.auth import READS
from aggregator.api.deps import PAGE_ROWS_MAX, EngineDep
from aggregator.api.problems import problems
from aggregator.api.routes.stock import _SKU
from aggregator.api.tracking_models import Serial, SerialMove
from aggregator.ledger import tracking_reads

router = APIRouter(tags=["serials"], dependencies=READS, responses=problems(401, 403, 422))
# As the wire takes a serial (stockwire.names.Serial), without control characters.
SerialPath = Annotated[str, Path(pattern=r"^[^\x00-\x1f\x7f]{1,64}$")]
HistoryLimit = Annotated[int, Query(ge=1, le=PAGE_ROWS_MAX, description="newest movements")]


@router.get("/serials/{serial}", responses=problems(404))
async def serial(
    engine: EngineDep,
    serial: SerialPath,
    sku: Annotated[str | None, Query(pattern=_SKU, description="only this item's unit")] = None,
    limit: HistoryLimit = 100,
) -> list[Serial]:
    """Where each unit with this serial number is (serials are unique per item, so one per
    item that has it), its state and its movements, newest first."""
    rows = await tracking_reads.serial_rows(engine, serial, sku, limit)
    if not rows:
        which = f" of sku {sku!r}" if sku is not None else ""
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"path.serial: no unit{which} with serial {serial!r} has moved",
        )
    return [
        Serial(
            serial=r.serial,
            sku=r.sku,
            gtin=r.gtin,
            location=r.location,
            state=r.state,  # validated: one of the schema check constraint's values
            last_txn_id=r.txn_id,
            updated_at=r.updated_at,
            history=[SerialMove(**asdict(m)) for m in r.history],
        )
        for r in rows
    ]
