from collections.abc import Awaitable
from typing import TypeVar
from uuid import UUID

from fastapi import APIRouter, HTTPException, status

from aggregator.api.deps import EngineDep, LedgerDep, RepublishDep
from aggregator.api.models import Transaction
from aggregator.errors import LedgerError, NotFoundError
from aggregator.ledger import reads

router = APIRouter(tags=["transactions"])
T = TypeVar("T")


@router.get("/transactions/{txn_id}")
async def transaction(engine: EngineDep, txn_id: UUID) -> Transaction:
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
        movements=row.movements,
    )


@router.post("/transactions/{txn_id}/approve")
async def approve(
    engine: EngineDep, ledger: LedgerDep, republish: RepublishDep, txn_id: UUID
) -> Transaction:
    """A person confirms a pending (low-confidence) transaction: it posts now."""
    posting = await _review(ledger.approve(txn_id))
    await republish(posting.movements)
    return await transaction(engine, txn_id)


@router.post("/transactions/{txn_id}/void")
async def void(engine: EngineDep, ledger: LedgerDep, txn_id: UUID) -> Transaction:
    """A person rejects a pending transaction: it never moves stock."""
    await _review(ledger.void(txn_id))
    return await transaction(engine, txn_id)


async def _review(action: Awaitable[T]) -> T:
    try:
        return await action
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except LedgerError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
