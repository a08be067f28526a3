from collections.abc import Awaitable
from typing import TypeVar
from uuid import UUID

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.auth import Approver, Operator, Viewer
from aggregator.api.deps import EngineDep, LedgerDep, RepublishDep
from aggregator.api.models import Transaction
from aggregator.api.problems import problems
from aggregator.errors import LedgerError, NotFoundError
from aggregator.ledger import reads

router = APIRouter(tags=["transactions"])
T = TypeVar("T")


@router.get("/transactions/{txn_id}", responses=problems(401, 403, 404, 422))
async def transaction(engine: EngineDep, _: Viewer, txn_id: UUID) -> Transaction:
    return await _transaction(engine, txn_id)


@router.post("/transactions/{txn_id}/approve", responses=problems(401, 403, 404, 409, 422))
async def approve(
    engine: EngineDep, ledger: LedgerDep, republish: RepublishDep, txn_id: UUID, ctx: Approver
) -> Transaction:
    """A person confirms a pending (low-confidence) transaction: it posts now."""
    posting = await _review(
        ctx.committed(status.HTTP_200_OK, lambda audit: ledger.approve(txn_id, audit=audit))
    )
    await republish(posting.movements)
    return await _transaction(engine, txn_id)


@router.post("/transactions/{txn_id}/void", responses=problems(401, 403, 404, 409, 422))
async def void(engine: EngineDep, ledger: LedgerDep, txn_id: UUID, ctx: Operator) -> Transaction:
    """A person rejects a pending transaction: it never moves stock."""
    await _review(ctx.committed(status.HTTP_200_OK, lambda audit: ledger.void(txn_id, audit=audit)))
    return await _transaction(engine, txn_id)


async def _transaction(engine: AsyncEngine, txn_id: UUID) -> Transaction:
    row = await reads.transaction(engine, txn_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"transaction {txn_id} not found")
    return Transaction(
        id=row.id,
        edge=row.edge,
        seq=row.seq,
        kind=row.kind,
        status=row.status,
        body=row.body,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        committed_at=row.committed_at,
        review_reason=row.review_reason,
        load_id=row.load_id,
        movements=row.movements,
    )


async def _review(action: Awaitable[T]) -> T:
    try:
        return await action
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except LedgerError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
