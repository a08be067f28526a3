from fastapi import APIRouter

from aggregator.api.auth import READS
from aggregator.api.deps import AfterQuery, EngineDep, LimitQuery, next_cursor
from aggregator.api.models import Rejected, RejectedPage
from aggregator.api.problems import problems
from aggregator.ledger import reads

router = APIRouter(tags=["rejected"], dependencies=READS, responses=problems(401, 403, 422))


@router.get("/rejected")
async def rejected(
    engine: EngineDep, after: AfterQuery = 0, limit: LimitQuery = 100
) -> RejectedPage:
    """Transactions the ledger refused (conflicts, unknown locations), kept with their body."""
    rows = await reads.rejected_after(engine, after, limit)
    items = [
        Rejected(
            id=r.id,
            txn_id=r.txn_id,
            edge=r.edge,
            reason=r.reason,
            body=r.body,
            received_at=r.received_at,
        )
        for r in rows
    ]
    return RejectedPage(items=items, next=next_cursor([r.id for r in rows], limit))
