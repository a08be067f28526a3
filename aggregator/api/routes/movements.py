from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, status

from aggregator.api.auth import Approver, Viewer
from aggregator.api.deps import (
    ID_MAX,
    AfterQuery,
    EngineDep,
    LedgerDep,
    LimitQuery,
    RepublishDep,
    UtcTime,
    next_cursor,
)
from aggregator.api.models import MovementPage
from aggregator.api.problems import problems
from aggregator.errors import NotFoundError, RefusedError, StateError
from aggregator.ledger import reads
from stockwire.events import Movement
from stockwire.names import LocationCode

router = APIRouter(tags=["movements"])
MovementId = Annotated[int, Path(ge=1, le=ID_MAX)]


@router.get("/movements", responses=problems(401, 403, 404, 422))
async def movements(
    engine: EngineDep,
    _: Viewer,
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
    load_id: Annotated[UUID | None, Query(description="only this load's movements")] = None,
    occurred_since: Annotated[
        UtcTime | None, Query(description="RFC 3339: only movements that happened at or after")
    ] = None,
    occurred_before: Annotated[
        UtcTime | None, Query(description="RFC 3339: only movements that happened before")
    ] = None,
    within: Annotated[
        LocationCode | None,
        Query(description="only movements from or to this location or one below it"),
    ] = None,
) -> MovementPage:
    """By id (commit order), optionally only those whose event time is in a window: a late
    movement appears after the ones committed before it, whatever its event time."""
    if within is not None and await reads.unknown_filter(engine, reads.StockFilter(within=within)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"query.within: no location {within!r}")
    window = reads.EventWindow(occurred_since, occurred_before)
    items = await reads.movements_after(engine, after, limit, load_id, window, within)
    return MovementPage(items=items, next=next_cursor([m.id for m in items], limit))


@router.post(
    "/movements/{movement_id}/reverse",
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
)
async def reverse(
    ledger: LedgerDep, republish: RepublishDep, movement_id: MovementId, ctx: Approver
) -> Movement:
    """Post a new movement that undoes this one; the original stays as it was."""
    try:
        posting = await ctx.committed(
            status.HTTP_201_CREATED,
            lambda audit: ledger.reverse_movement(movement_id, audit=audit),
        )
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except (StateError, RefusedError) as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    await republish(posting)
    return posting.movements[0]
