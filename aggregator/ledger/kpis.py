"""Ledger KPIs over a time window, one set-oriented query each, the same on SQLite and PostgreSQL.

Which clock each uses:
- record accuracy and counts settled: the counts *taken* in the window (counts.counted_at,
  event time), whenever they were posted;
- adjustments: movements against @loss that *happened* in the window (occurred_at, event time);
- posting delay and late movements: movements *posted* in the window (committed_at, commit
  time), the delay being committed_at - occurred_at; compensations are left out (their event
  time is the count's, not when something happened: the late movement they follow counts).

Windows are in UTC, as the databases store times.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger.sides import LOSS
from aggregator.schema import count_settlements, counts, locations, movements, transactions

SETTLEMENT = "settlement"  # a compensation for a late movement before a count


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime  # inclusive
    until: datetime  # exclusive


@dataclass(frozen=True, slots=True)
class Accuracy:
    counts: int
    exact: int  # variance 0
    share: float | None  # exact / counts; None without counts
    units_book: int
    units_off: int  # the sum of |variance|
    units_share: float | None  # 1 - units_off / units_book; None when the book is 0


@dataclass(frozen=True, slots=True)
class Adjustment:
    kind: str  # the transaction's kind (count, adjust, ...), or "settlement" (late_counts.py)
    movements: int
    units_found: int  # from @loss
    units_lost: int  # to @loss


@dataclass(frozen=True, slots=True)
class Delay:
    movements: int
    p50_s: float | None  # nearest rank; None without movements
    p95_s: float | None
    max_s: float | None
    late: int  # posted more than late_after_s after they happened


@dataclass(frozen=True, slots=True)
class Settled:
    counts: int  # counts in the window that late movements settled
    movements: int  # their compensations
    units: int


@dataclass(frozen=True, slots=True)
class Kpis:
    accuracy: Accuracy
    adjustments: list[Adjustment]
    delay: Delay
    settled: Settled


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _delay_s(dialect: str) -> sa.ColumnElement[float]:
    """committed_at - occurred_at of a movement, in seconds."""
    if dialect == "postgresql":
        seconds = sa.extract("epoch", movements.c.committed_at - movements.c.occurred_at)
        return sa.cast(seconds, sa.Float)
    days = sa.func.julianday(movements.c.committed_at) - sa.func.julianday(movements.c.occurred_at)
    return sa.cast(days * 86400.0, sa.Float)


async def kpis(engine: AsyncEngine, window: Window, late_after_s: float) -> Kpis:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: _kpis(c, window, late_after_s))


def _kpis(conn: sa.Connection, window: Window, late_after_s: float) -> Kpis:
    return Kpis(
        _accuracy(conn, window),
        _adjustments(conn, window),
        _delay(conn, window, late_after_s),
        _settled(conn, window),
    )


def _counted_in(window: Window) -> sa.ColumnElement[bool]:
    return sa.and_(counts.c.counted_at >= window.since, counts.c.counted_at < window.until)


def _accuracy(conn: sa.Connection, window: Window) -> Accuracy:
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((counts.c.variance == 0, 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(counts.c.book), 0),
        sa.func.coalesce(sa.func.sum(sa.func.abs(counts.c.variance)), 0),
    ).where(_counted_in(window))
    n, exact, book, off = conn.execute(query).one()
    n, exact, book, off = int(n), int(exact), int(book), int(off)
    units = round(max(0.0, 1 - off / book), 6) if book else None
    return Accuracy(n, exact, _ratio(exact, n), book, off, units)


def _adjustments(conn: sa.Connection, window: Window) -> list[Adjustment]:
    loss = sa.select(locations.c.id).where(locations.c.code == LOSS).scalar_subquery()
    found = movements.c.from_location_id == loss
    kind = sa.case(
        (count_settlements.c.movement_id.is_not(None), SETTLEMENT), else_=transactions.c.kind
    ).label("kind")
    query = (
        sa.select(
            kind,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((found, movements.c.qty), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((found, 0), else_=movements.c.qty)), 0),
        )
        .join(transactions, transactions.c.id == movements.c.txn_id)
        .outerjoin(count_settlements, count_settlements.c.movement_id == movements.c.id)
        .where(
            sa.or_(found, movements.c.to_location_id == loss),
            movements.c.occurred_at >= window.since,
            movements.c.occurred_at < window.until,
        )
        .group_by(kind)
        .order_by(kind)
    )
    return [Adjustment(k, int(n), int(f), int(lost)) for k, n, f, lost in conn.execute(query)]


def _delay(conn: sa.Connection, window: Window, late_after_s: float) -> Delay:
    delay = _delay_s(conn.dialect.name).label("delay")
    posted = (
        sa.select(
            delay,
            sa.func.row_number().over(order_by=delay).label("rank"),
            sa.func.count().over().label("n"),
            sa.func.sum(sa.case((delay > late_after_s, 1), else_=0)).over().label("late"),
        )
        .where(
            movements.c.committed_at >= window.since,
            movements.c.committed_at < window.until,
            ~sa.exists().where(count_settlements.c.movement_id == movements.c.id),
        )
        .subquery()
    )
    n, rank = posted.c.n, posted.c.rank

    def nearest(pct: int) -> sa.ColumnElement[bool]:  # the least rank with rank >= pct% of n
        return sa.and_(rank * 100 >= n * pct, (rank - 1) * 100 < n * pct)

    query = sa.select(posted.c.delay, rank, n, posted.c.late).where(
        sa.or_(nearest(50), nearest(95), rank == n)
    )
    rows = conn.execute(query).all()
    if not rows:
        return Delay(0, None, None, None, 0)
    total, late = int(rows[0].n), int(rows[0].late)
    by_rank = {int(r.rank): round(float(r.delay), 3) for r in rows}
    return Delay(
        total,
        by_rank[(total * 50 + 99) // 100],
        by_rank[(total * 95 + 99) // 100],
        by_rank[total],
        late,
    )


def _settled(conn: sa.Connection, window: Window) -> Settled:
    query = (
        sa.select(
            sa.func.count(sa.distinct(count_settlements.c.count_txn_id)),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(movements.c.qty), 0),
        )
        .select_from(count_settlements)
        .join(counts, counts.c.txn_id == count_settlements.c.count_txn_id)
        .join(movements, movements.c.id == count_settlements.c.movement_id)
        .where(_counted_in(window))
    )
    n, moves, units = conn.execute(query).one()
    return Settled(int(n), int(moves), int(units))
