"""Cycle counts: tasks over a location subtree, counted lines, approvals, ABC schedules.
Any key reads; an operator starts, counts and closes; an approver (not the counter) approves a
line whose variance exceeds the site's threshold. Every write is audited."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from aggregator.api.auth import Approver, Operator, Viewer
from aggregator.api.context import RequestContext
from aggregator.api.deps import CountRulesDep, EngineDep, LedgerDep, LimitQuery, RepublishDep
from aggregator.api.master_write import as_problems
from aggregator.api.problems import problems
from aggregator.audit import AuditEntry
from aggregator.errors import NotFoundError
from aggregator.ledger import Ledger, count_tasks
from aggregator.ledger.count_tasks import TaskView
from aggregator.ledger.ledger import void_pending
from aggregator.schema import locations
from stockwire.names import LocationCode

router = APIRouter(tags=["counts"])
TaskId = Annotated[int, Path(ge=1, le=2**62)]
LineId = Annotated[int, Path(ge=1, le=2**62)]
T = TypeVar("T")


class TaskIn(BaseModel):
    location: LocationCode = Field(description="the subtree to count: it and all below it")
    sku: str | None = Field(default=None, min_length=1, max_length=64, description="one item")


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    location: LocationCode
    lot: str | None = Field(default=None, min_length=1, max_length=20)
    counted: int = Field(ge=0, le=2**53)


class Line(BaseModel):
    id: int
    sku: str | None
    gtin: str | None
    location: str
    lot: str | None
    book: int  # as of the task's start
    counted: int | None
    variance: int | None
    state: str  # open | review (waits for approval) | posted
    counted_by: str | None
    counted_at: datetime | None
    approved_by: str | None
    txn_id: UUID | None  # the count transaction it posted


class Task(BaseModel):
    id: int
    location: str
    sku: str | None
    state: str  # open | closed
    started_at: datetime
    started_by: str
    closed_at: datetime | None
    closed_by: str | None
    lines: list[Line]


class DueLine(BaseModel):
    sku: str | None
    gtin: str | None
    location: str
    abc_class: str
    last_counted_at: datetime | None
    due_at: datetime | None  # None: never counted, due now


@router.post(
    "/counts/tasks", status_code=status.HTTP_201_CREATED, responses=problems(400, 401, 403, 422)
)
async def start_task(wanted: TaskIn, engine: EngineDep, ledger: LedgerDep, ctx: Operator) -> Task:
    """Freeze the book of the subtree (the item's, if given): one line per non-zero balance."""
    now = ledger.clock()
    task_id = await _write(
        ctx,
        status.HTTP_201_CREATED,
        ledger,
        lambda conn, audit: count_tasks.start(conn, wanted.location, wanted.sku, now, audit),
    )
    return await _task(engine, task_id)


@router.get("/counts/tasks/{task_id}", responses=problems(401, 403, 404, 422))
async def get_task(engine: EngineDep, _: Viewer, task_id: TaskId) -> Task:
    return await _task(engine, task_id)


@router.post("/counts/tasks/{task_id}/lines", responses=problems(400, 401, 403, 404, 409, 422))
async def count_line(
    task_id: TaskId,
    line: LineIn,
    engine: EngineDep,
    ledger: LedgerDep,
    rules: CountRulesDep,
    republish: RepublishDep,
    ctx: Operator,
) -> Task:
    """A counted quantity: it posts now (a count at the task's start), unless its |variance|
    exceeds the threshold: then it waits for another person's approval."""
    now = ledger.clock()
    counted = (line.sku, line.location, line.lot, line.counted)
    posting = await _write(
        ctx,
        status.HTTP_200_OK,
        ledger,
        lambda conn, audit: count_tasks.count_line(
            conn,
            task_id,
            counted,
            rules,
            now,
            audit,
            lambda t: ledger.post_by_hand(conn, t),
            lambda txn_id: void_pending(conn, txn_id, f"superseded by {audit.actor}'s recount"),
        ),
    )
    if posting is not None:
        await republish(posting)
    return await _task(engine, task_id)


@router.post(
    "/counts/tasks/{task_id}/lines/{line_id}/approve", responses=problems(401, 403, 404, 409, 422)
)
async def approve_line(
    task_id: TaskId,
    line_id: LineId,
    engine: EngineDep,
    ledger: LedgerDep,
    republish: RepublishDep,
    ctx: Approver,
) -> Task:
    now = ledger.clock()
    posting = await _write(
        ctx,
        status.HTTP_200_OK,
        ledger,
        lambda conn, audit: count_tasks.approve(
            conn,
            task_id,
            line_id,
            now,
            audit,
            lambda t: ledger.post_by_hand(conn, t),
            lambda txn_id: ledger.approve_pending(conn, txn_id, audit.actor),
        ),
    )
    await republish(posting)
    return await _task(engine, task_id)


@router.post("/counts/tasks/{task_id}/close", responses=problems(401, 403, 404, 409, 422))
async def close_task(task_id: TaskId, engine: EngineDep, ledger: LedgerDep, ctx: Operator) -> Task:
    """No more counts; a line waiting for approval must be approved first."""
    now = ledger.clock()
    await _write(
        ctx,
        status.HTTP_200_OK,
        ledger,
        lambda conn, audit: count_tasks.close(conn, task_id, now, audit),
    )
    return await _task(engine, task_id)


@router.get("/counts/due", responses=problems(401, 403, 404, 422))
async def due(
    engine: EngineDep,
    ledger: LedgerDep,
    rules: CountRulesDep,
    _: Viewer,
    within: Annotated[
        LocationCode | None, Query(description="only this location and everything below it")
    ] = None,
    limit: LimitQuery = 1000,
) -> list[DueLine]:
    """(item, location) pairs with stock due for a count by the item's ABC class (A, B, C
    every so many days, settings [counts]) since the last count there; never counted: due."""
    if within is not None:
        async with engine.connect() as conn:
            known = await conn.scalar(sa.select(locations.c.id).where(locations.c.code == within))
        if known is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"query.within: no location {within!r}")
    now = ledger.clock().astimezone(UTC)
    rows = await count_tasks.due(engine, rules, now, within, limit)
    return [
        DueLine(
            sku=r.sku,
            gtin=r.gtin,
            location=r.location,
            abc_class=r.abc_class,
            last_counted_at=r.last_counted_at,
            due_at=r.due_at,
        )
        for r in rows
    ]


async def _write(
    ctx: RequestContext,
    done: int,
    ledger: Ledger,
    change: Callable[[sa.Connection, AuditEntry], T],
) -> T:
    def run(audit: AuditEntry) -> Awaitable[T]:
        return ledger.write(lambda conn: change(conn, audit))

    with as_problems():
        return await ctx.committed(done, run)


async def _task(engine: EngineDep, task_id: int) -> Task:
    try:
        view: TaskView = await count_tasks.task(engine, task_id)
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    return Task(
        id=view.id,
        location=view.location,
        sku=view.sku,
        state=view.state,
        started_at=view.started_at,
        started_by=view.started_by,
        closed_at=view.closed_at,
        closed_by=view.closed_by,
        lines=[Line(**{f: getattr(ln, f) for f in Line.model_fields}) for ln in view.lines],
    )
