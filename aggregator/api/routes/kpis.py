"""Ledger KPIs over a window: any key reads."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from aggregator.api.auth import READS
from aggregator.api.deps import EngineDep, UtcTime
from aggregator.api.problems import problems
from aggregator.ledger import kpis as ledger_kpis

router = APIRouter(tags=["kpis"], dependencies=READS, responses=problems(401, 403, 422))


class Accuracy(BaseModel):
    """Counts taken in the window (event time)."""

    counts: int
    exact: int
    share: float | None
    units_book: int
    units_off: int
    units_share: float | None


class Adjustment(BaseModel):
    """Movements against @loss that happened in the window (event time), by transaction kind."""

    kind: str
    movements: int
    units_found: int
    units_lost: int


class Delay(BaseModel):
    """Movements posted in the window (commit time): committed_at - occurred_at, seconds."""

    movements: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    late: int
    late_after_minutes: int


class Settled(BaseModel):
    """Counts taken in the window (event time) that late movements settled."""

    counts: int
    movements: int
    units: int


class Kpis(BaseModel):
    since: str
    until: str
    accuracy: Accuracy
    adjustments: list[Adjustment]
    delay: Delay
    settled: Settled


@router.get("/kpis")
async def kpis(
    engine: EngineDep,
    since: Annotated[UtcTime, Query(description="RFC 3339: the window's start (inclusive)")],
    until: Annotated[UtcTime, Query(description="RFC 3339: the window's end (exclusive)")],
    late_after_minutes: Annotated[
        int, Query(ge=0, le=525600, description="a movement posted later than this is late")
    ] = 15,
) -> Kpis:
    """Inventory record accuracy, adjustments, posting delay, late movements and counts settled
    by them. Accuracy, adjustments and settled counts use event time (when the count was taken,
    when the movement happened); delay and late movements use commit time (movements posted in
    the window)."""
    if until <= since:
        error = {"type": "value_error", "loc": ("query", "until"), "msg": "not after since"}
        raise RequestValidationError([error])
    window = ledger_kpis.Window(since, until)
    got = await ledger_kpis.kpis(engine, window, late_after_minutes * 60.0)
    return Kpis(
        since=since.isoformat(),
        until=until.isoformat(),
        accuracy=Accuracy(**asdict(got.accuracy)),
        adjustments=[Adjustment(**asdict(a)) for a in got.adjustments],
        delay=Delay(**asdict(got.delay), late_after_minutes=late_after_minutes),
        settled=Settled(**asdict(got.settled)),
    )
