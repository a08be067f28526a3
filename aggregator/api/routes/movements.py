from fastapi import APIRouter, HTTPException, status

from aggregator.api.deps import (
    AfterQuery,
    EngineDep,
    LedgerDep,
    LimitQuery,
    RepublishDep,
    next_cursor,
)
from aggregator.api.models import MovementPage
from aggregator.errors import NotFoundError, StateError
from aggregator.ledger import reads
from stockwire.events import Movement

router = APIRouter(tags=["movements"])


@router.get("/movements")
async def movements(
    engine: EngineDep, after: AfterQuery = 0, limit: LimitQuery = 100
) -> MovementPage:
    items = await reads.movements_after(engine, after, limit)
    return MovementPage(items=items, next=next_cursor([m.id for m in items], limit))


@router.post("/movements/{movement_id}/reverse", status_code=status.HTTP_201_CREATED)
async def reverse(ledger: LedgerDep, republish: RepublishDep, movement_id: int) -> Movement:
    """Post a new movement that undoes this one; the original stays as it was."""
    try:
        posting = await ledger.reverse_movement(movement_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except StateError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    await republish(posting.movements)
    return posting.movements[0]
