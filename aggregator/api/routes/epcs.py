from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from aggregator.api.auth import READS
from aggregator.api.deps import PAGE_ROWS_MAX, EngineDep
from aggregator.api.models import Epc, EpcMove
from aggregator.api.problems import problems
from aggregator.ledger import epc_reads

router = APIRouter(tags=["epcs"], dependencies=READS, responses=problems(401, 403, 422))
# As the wire takes an EPC (stockwire.names.Epc): hex, either case.
EpcPath = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{8,124}$", description="hex, any case")]
HistoryLimit = Annotated[int, Query(ge=1, le=PAGE_ROWS_MAX, description="newest movements")]


@router.get("/epcs/{epc}", responses=problems(404))
async def epc(engine: EngineDep, epc: EpcPath, limit: HistoryLimit = 100) -> Epc:
    """Where a tag is now (the end of its last movement) and its movements, newest first."""
    row = await epc_reads.epc(engine, epc.upper(), limit)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"EPC {epc.upper()} has never moved")
    return Epc(
        epc=row.epc,
        sku=row.sku,
        gtin=row.gtin,
        location=row.location,
        state=row.state,  # validated: one of the schema check constraint's values
        last_txn_id=row.txn_id,
        review_txn_id=row.review_txn_id,
        updated_at=row.updated_at,
        history=[
            EpcMove(
                movement_id=m.movement_id,
                txn_id=m.txn_id,
                load_id=m.load_id,
                kind=m.kind,
                from_location=m.from_location,
                to_location=m.to_location,
                occurred_at=m.occurred_at,
                committed_at=m.committed_at,
                reverses=m.reverses,
            )
            for m in row.history
        ],
    )
