from collections.abc import Awaitable
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.auth import Approver, Operator, Viewer
from aggregator.api.deps import EngineDep, LedgerDep, LimitQuery, RepublishDep
from aggregator.api.models import Transaction, TransactionPage, TransactionSummary, TxnStatus
from aggregator.api.problems import problems
from aggregator.errors import LedgerError, NotFoundError
from aggregator.ledger import reads

router = APIRouter(tags=["transactions"])
T = TypeVar("T")


@router.get("/transactions", responses=problems(401, 403, 422))
async def transactions(
    engine: EngineDep,
    _: Viewer,
    wanted: Annotated[
        TxnStatus | None, Query(alias="status", description="only these; all when absent")
    ] = None,
    after: Annotated[UUID | None, Query(description="return transactions with id > after")] = None,
    limit: LimitQuery = 100,
) -> TransactionPage:
    """Transactions by id: UUIDv7s made at the edges, so oldest first (to the millisecond of
    the edge's clock). `?status=pending` is the review queue, for approve and void."""
    rows = await reads.transactions_after(engine, wanted, after, limit)
    items = [_summary(r) for r in rows]
    return TransactionPage(items=items, next=rows[-1].id if len(rows) == limit else None)


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
    await republish(posting)
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
    txn = row.txn
    return Transaction(
        id=txn.id,
        edge=txn.edge,
        seq=txn.seq,
        kind=txn.kind,
        status=txn.status,
        body=txn.body,
        occurred_at=txn.occurred_at,
        received_at=txn.received_at,
        committed_at=txn.committed_at,
        review_reason=txn.review_reason,
        load_id=txn.load_id,
        movements=row.movements,
    )


def _summary(r: reads.TxnListRow) -> TransactionSummary:
    body = r.body
    return TransactionSummary(
        id=r.id,
        edge=r.edge,
        device=body["device"],
        seq=r.seq,
        kind=r.kind,
        status=r.status,  # validated: one of the schema check constraint's values
        review_reason=r.review_reason,
        sku=body.get("sku"),
        gtin=body.get("gtin"),
        lot=body.get("lot"),
        qty=body["qty"],
        uom=body["uom"],
        from_location=body.get("from_location"),
        to_location=body.get("to_location"),
        confidence=body["confidence"],
        epcs=len(body.get("epcs", ())),
        load_id=r.load_id,
        occurred_at=r.occurred_at,
        received_at=r.received_at,
        committed_at=r.committed_at,
    )


async def _review(action: Awaitable[T]) -> T:
    try:
        return await action
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except LedgerError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
