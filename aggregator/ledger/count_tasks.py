"""Cycle-count tasks: the book of a location subtree (one item, or all) frozen at the start, a
line per (item, location, lot); counted quantities come from the API or from scanner counts at
the lines' balances; a line whose |variance| exceeds the site's threshold waits for a person
other than the counter before it posts. A line counted through the API posts as a COUNT
transaction at the task's start time through the ledger, so its adjustment (against @loss) is the
count's variance as of then. A scanner count over the threshold at an open line is kept pending
(TaskLines.hold) and posts, as of its own event time, when the line is approved.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, record
from aggregator.errors import ConflictError, FieldError, NotFoundError
from aggregator.ledger.late_counts import aware
from aggregator.schema import balances, count_lines, count_tasks, counts, items, locations
from aggregator.settings import CountSettings
from stockwire.ids import uuid7
from stockwire.txn import StockTransaction, TxnKind

API_EDGE = "api"  # the edge of the counts a task posts
T = TypeVar("T")
Post = Callable[[StockTransaction], T]
Settle = Callable[[UUID], T]  # approve or void a pending (scanner) count in the caller's write
BalanceKey = tuple[int, int, str]  # (item_id, location_id, lot)


@dataclass(frozen=True, slots=True)
class CountRules:
    approval_units: int | None = 10
    approval_percent: float | None = 5.0
    every_days: tuple[tuple[str, int], ...] = (("A", 30), ("B", 91), ("C", 365))

    @classmethod
    def from_settings(cls, s: CountSettings) -> "CountRules":
        every = (("A", s.every_days_a), ("B", s.every_days_b), ("C", s.every_days_c))
        return cls(s.approval_units, s.approval_percent, every)

    def needs_approval(self, book: int, counted: int) -> bool:
        off = abs(counted - book)
        units = self.approval_units is not None and off > self.approval_units
        share = self.approval_percent is not None and (
            off * 100 > self.approval_percent * book if book > 0 else off > 0
        )
        return units or share

    def describe(self) -> str:
        units = f"approval_units {self.approval_units}" if self.approval_units is not None else ""
        share = (
            "" if self.approval_percent is None else f"approval_percent {self.approval_percent:g}"
        )
        return " / ".join(t for t in (units, share) if t)


@dataclass(frozen=True, slots=True)
class OpenLine:
    id: int
    task_id: int
    book: int
    waiting: UUID | None = None  # the scanner count it waits with; a recount takes its place


@dataclass(slots=True)
class TaskLines:
    """The lines of open tasks at the balances a posting counts that a count fills (one
    query): uncounted ones, and ones waiting for approval (a recount takes the waiting count's
    place, and that count is voided: `superseded`). A scanner count whose variance against a
    line's book is over the threshold (`rules`; None: none waits) is held: it waits pending and
    the line waits for approval."""

    rules: CountRules | None
    lines: dict[BalanceKey, list[OpenLine]] = field(default_factory=dict)
    held: list[dict[str, object]] = field(default_factory=list)  # count_lines updates
    superseded: list[tuple[UUID, UUID]] = field(default_factory=list)  # (waiting count, recount)

    @classmethod
    def load(
        cls, conn: sa.Connection, keys: list[BalanceKey], rules: CountRules | None
    ) -> "TaskLines":
        found = cls(rules)
        if not keys:
            return found
        query = (
            sa.select(count_lines.c.id, count_lines.c.task_id, count_lines.c.book)
            .add_columns(count_lines.c.item_id, count_lines.c.location_id, count_lines.c.lot)
            .add_columns(count_lines.c.state, count_lines.c.txn_id)
            .join(count_tasks, count_tasks.c.id == count_lines.c.task_id)
            .where(
                count_tasks.c.state == "open",
                ((count_lines.c.state == "open") & count_lines.c.counted.is_(None))
                | (count_lines.c.state == "review"),
                sa.tuple_(count_lines.c.item_id, count_lines.c.location_id, count_lines.c.lot).in_(
                    sorted(set(keys))
                ),
            )
            .order_by(count_lines.c.id)
            .with_for_update(of=count_lines)  # as approving a line takes it (PostgreSQL)
        )
        for r in conn.execute(query):
            key = (r.item_id, r.location_id, r.lot)
            waiting = r.txn_id if r.state == "review" else None
            found.lines.setdefault(key, []).append(OpenLine(r.id, r.task_id, r.book, waiting))
        return found

    def hold(self, txn: StockTransaction, key: BalanceKey, qty: int) -> str | None:
        """Why the count at `key` waits for its line's approval; None: it posts (and fills)."""
        if self.rules is None or not self.lines:
            return None
        over = [ln for ln in self.lines.get(key, ()) if self.rules.needs_approval(ln.book, qty)]
        if not over:
            return None
        for line in self.lines.pop(key):
            self.held.append(
                {
                    "line_id": line.id,
                    "counted": qty,
                    "counted_by": f"{txn.edge}/{txn.device}",
                    "counted_at": txn.occurred_at.astimezone(UTC),
                    "txn_id": txn.id,
                }
            )
            if line.waiting is not None:
                self.superseded.append((line.waiting, txn.id))
        first = over[0]
        return (
            f"count task {first.task_id} line {first.id}: variance {qty - first.book} is over"
            f" the approval threshold ({self.rules.describe()}); approve the line"
        )


@dataclass(frozen=True, slots=True)
class LineView:
    id: int
    sku: str | None
    gtin: str | None
    location: str
    lot: str | None
    book: int
    counted: int | None
    variance: int | None
    state: str
    counted_by: str | None
    counted_at: datetime | None
    approved_by: str | None
    txn_id: UUID | None


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    location: str
    sku: str | None
    state: str
    started_at: datetime
    started_by: str
    closed_at: datetime | None
    closed_by: str | None
    lines: list[LineView]


def start(conn: sa.Connection, code: str, sku: str | None, now: datetime, audit: AuditEntry) -> int:
    """A task over the subtree `code` names (only `sku`, if given): its lines are the
    non-zero balances there now."""
    place = conn.execute(
        sa.select(locations.c.id, locations.c.path, locations.c.virtual).where(
            locations.c.code == code
        )
    ).one_or_none()
    if place is None or place.virtual:
        raise FieldError("body.location", f"no physical location {code!r}")
    item_id = _item_id(conn, sku) if sku is not None else None
    task_id = conn.execute(
        sa.insert(count_tasks).values(
            location_id=place.id,
            item_id=item_id,
            state="open",
            started_at=now,
            started_by=audit.actor,
        )
    ).inserted_primary_key
    assert task_id is not None
    book = (
        sa.select(
            sa.literal(task_id[0]),
            balances.c.item_id,
            balances.c.location_id,
            balances.c.lot,
            balances.c.qty,
            sa.literal("open"),
        )
        .join(locations, locations.c.id == balances.c.location_id)
        .where(
            locations.c.path.like(place.path + "%"),
            locations.c.virtual == sa.false(),
            balances.c.qty != 0,
        )
    )
    if item_id is not None:
        book = book.where(balances.c.item_id == item_id)
    columns = ["task_id", "item_id", "location_id", "lot", "book", "state"]
    conn.execute(sa.insert(count_lines).from_select(columns, book))
    record(conn, audit)
    return int(task_id[0])


def count_line(
    conn: sa.Connection,
    task_id: int,
    counted: tuple[str, str, str | None, int],  # sku, location, lot, qty
    rules: CountRules,
    now: datetime,
    audit: AuditEntry,
    post: Post[T],
    void: Settle[None],
) -> T | None:
    """Record a counted quantity; post it unless its variance needs approval. A balance the
    book did not have (in the task's subtree) gets a line with book 0. A recount of a line
    whose scanner count waits voids that count."""
    sku, code, lot, qty = counted
    task = _open_task(conn, task_id)
    item_id = _item_id(conn, sku)
    if task.item_id is not None and item_id != task.item_id:
        raise FieldError("body.sku", f"task {task_id} counts another item")
    place = conn.execute(
        sa.select(locations.c.id).where(
            locations.c.code == code,
            locations.c.path.like(task.path + "%"),
            locations.c.virtual == sa.false(),
        )
    ).scalar_one_or_none()
    if place is None:
        raise FieldError("body.location", f"{code!r} is not a physical location of task {task_id}")
    key = (count_lines.c.task_id == task_id) & (count_lines.c.item_id == item_id)
    key &= (count_lines.c.location_id == place) & (count_lines.c.lot == (lot or ""))
    # Locked: two counters of one line on PostgreSQL post it once (SQLite's writer serializes).
    line = conn.execute(sa.select(count_lines).where(key).with_for_update()).one_or_none()
    if line is None:
        values = {"task_id": task_id, "item_id": item_id, "location_id": place}
        conn.execute(sa.insert(count_lines).values(lot=lot or "", book=0, state="open", **values))
        line = conn.execute(sa.select(count_lines).where(key)).one()
    if line.state == "review" and line.txn_id is not None:
        void(line.txn_id)  # the scanner count it waited with
    elif line.state != "open":
        raise ConflictError("body.sku", f"line {line.id} is counted already ({line.state})")
    review = rules.needs_approval(line.book, qty)
    done = {"counted": qty, "counted_by": audit.actor, "counted_at": now}
    conn.execute(
        sa.update(count_lines)
        .where(count_lines.c.id == line.id)
        .values(state="review" if review else "open", txn_id=None, **done)
    )
    posted = None if review else _post_line(conn, line.id, task.started_at, now, post)
    record(conn, audit)
    return posted


def approve(
    conn: sa.Connection,
    task_id: int,
    line_id: int,
    now: datetime,
    audit: AuditEntry,
    post: Post[T],
    settle: Settle[T],
) -> T:
    """Another person confirms a line waiting for approval: it posts now (a scanner count that
    waits: that count, as of its event time; `settle` marks the line posted)."""
    task = _open_task(conn, task_id)
    line = conn.execute(
        sa.select(count_lines)
        .where(count_lines.c.id == line_id, count_lines.c.task_id == task_id)
        .with_for_update()
    ).one_or_none()
    if line is None:
        raise NotFoundError(f"task {task_id} has no line {line_id}")
    if line.state != "review":
        raise ConflictError("path.line_id", f"line {line_id} does not wait for approval")
    if line.counted_by == audit.actor:
        raise ConflictError("path.line_id", "the counter cannot approve their own count")
    conn.execute(
        sa.update(count_lines)
        .where(count_lines.c.id == line_id)
        .values(approved_by=audit.actor, approved_at=now)
    )
    if line.txn_id is not None:
        posted = settle(line.txn_id)
    else:
        posted = _post_line(conn, line_id, task.started_at, now, post)
    record(conn, audit)
    return posted


def close(conn: sa.Connection, task_id: int, now: datetime, audit: AuditEntry) -> None:
    """No more counts; lines never counted post nothing. Lines waiting for approval block it."""
    _open_task(conn, task_id)
    waiting = conn.execute(
        sa.select(sa.func.count())
        .select_from(count_lines)
        .where(count_lines.c.task_id == task_id, count_lines.c.state == "review")
    ).scalar_one()
    if waiting:
        raise ConflictError(
            "path.task_id", f"{waiting} line(s) of task {task_id} wait for approval"
        )
    conn.execute(
        sa.update(count_tasks)
        .where(count_tasks.c.id == task_id)
        .values(state="closed", closed_at=now, closed_by=audit.actor)
    )
    record(conn, audit)


def hold(conn: sa.Connection, held: list[dict[str, object]]) -> None:
    """The lines whose scanner count waits (TaskLines.hold), after the count's txn row."""
    if held:
        conn.execute(
            sa.update(count_lines)
            .where(count_lines.c.id == sa.bindparam("line_id"))
            .values(state="review"),
            held,
        )


def attach(
    conn: sa.Connection, rows: list[dict[str, object]], lines: TaskLines, who: dict[UUID, str]
) -> None:
    """Scanner counts just posted (counts rows) fill the lines of open tasks at their balances
    (found by TaskLines.load; the rare match is updated; the last count wins); a count a line
    waited with is `superseded`."""
    if not lines.lines:
        return
    by_key = {(r["item_id"], r["location_id"], r["lot"]): r for r in rows}
    for key, row in by_key.items():
        txn_id = row["txn_id"]
        assert isinstance(txn_id, UUID)
        for line in lines.lines.get(key, []):  # type: ignore[arg-type]
            if line.waiting is not None:
                lines.superseded.append((line.waiting, txn_id))
            conn.execute(
                sa.update(count_lines)
                .where(count_lines.c.id == line.id)
                .values(
                    counted=row["counted"],
                    counted_by=who.get(txn_id, "scanner"),
                    counted_at=row["counted_at"],
                    state="posted",
                    txn_id=txn_id,
                )
            )


def approved(conn: sa.Connection, txn_id: UUID, approver: str, now: datetime) -> None:
    """A waiting scanner count posted (approved as its line or as a pending txn): its lines
    are posted, approved by whoever approved it."""
    conn.execute(
        sa.update(count_lines)
        .where(count_lines.c.txn_id == txn_id, count_lines.c.state == "review")
        .values(state="posted", approved_by=approver, approved_at=now)
    )


def reopen(conn: sa.Connection, txn_id: UUID) -> None:
    """A waiting scanner count was voided: its lines are uncounted again (open)."""
    conn.execute(
        sa.update(count_lines)
        .where(count_lines.c.txn_id == txn_id, count_lines.c.state == "review")
        .values(state="open", counted=None, counted_by=None, counted_at=None, txn_id=None)
    )


async def task(engine: AsyncEngine, task_id: int) -> TaskView:
    place = locations.alias("place")
    head = (
        sa.select(count_tasks, place.c.code, items.c.sku)
        .join(place, place.c.id == count_tasks.c.location_id)
        .outerjoin(items, items.c.id == count_tasks.c.item_id)
        .where(count_tasks.c.id == task_id)
    )
    lines = (
        sa.select(count_lines, items.c.sku, items.c.gtin, locations.c.code)
        .join(items, items.c.id == count_lines.c.item_id)
        .join(locations, locations.c.id == count_lines.c.location_id)
        .where(count_lines.c.task_id == task_id)
        .order_by(locations.c.code, items.c.sku, items.c.gtin, count_lines.c.lot)
    )
    async with engine.connect() as conn:
        t = (await conn.execute(head)).one_or_none()
        if t is None:
            raise NotFoundError(f"no count task {task_id}")
        found = (await conn.execute(lines)).all()
    return TaskView(
        t.id,
        t.code,
        t.sku,
        t.state,
        aware(t.started_at),
        t.started_by,
        None if t.closed_at is None else aware(t.closed_at),
        t.closed_by,
        [_line_view(r) for r in found],
    )


@dataclass(frozen=True, slots=True)
class Due:
    sku: str | None
    gtin: str | None
    location: str
    abc_class: str
    last_counted_at: datetime | None
    due_at: datetime | None  # None: never counted, due now


async def due(
    engine: AsyncEngine, rules: CountRules, now: datetime, within: str | None, limit: int
) -> list[Due]:
    """(item, location) pairs with stock whose item has an ABC class and whose last count is
    older than the class's interval (or who were never counted), oldest first."""
    last = (
        sa.select(
            counts.c.item_id, counts.c.location_id, sa.func.max(counts.c.counted_at).label("at")
        )
        .group_by(counts.c.item_id, counts.c.location_id)
        .subquery("last")
    )
    held = (
        sa.select(balances.c.item_id, balances.c.location_id)
        .where(balances.c.qty != 0)
        .distinct()
        .subquery("held")
    )
    query = (
        sa.select(items.c.sku, items.c.gtin, items.c.abc_class, locations.c.code, last.c.at)
        .select_from(held)
        .join(items, items.c.id == held.c.item_id)
        .join(locations, locations.c.id == held.c.location_id)
        .outerjoin(
            last,
            (last.c.item_id == held.c.item_id) & (last.c.location_id == held.c.location_id),
        )
        .where(items.c.abc_class.isnot(None), locations.c.virtual == sa.false())
        .order_by(locations.c.code, items.c.sku, items.c.gtin)
    )
    if within is not None:
        top = sa.select(locations.c.path).where(locations.c.code == within).scalar_subquery()
        query = query.where(locations.c.path.like(top + "%"))
    every = dict(rules.every_days)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found: list[Due] = []
    for r in rows:
        days = every.get(r.abc_class)
        if days is None:
            continue
        at = None if r.at is None else aware(r.at)
        due_at = None if at is None else at + timedelta(days=days)
        if due_at is None or due_at <= now:
            found.append(Due(r.sku, r.gtin, r.code, r.abc_class, at, due_at))
    found.sort(key=lambda d: (d.due_at is not None, d.due_at or now, d.location))
    return found[:limit]


@dataclass(frozen=True, slots=True)
class _Task:
    item_id: int | None
    path: str
    started_at: datetime


def _open_task(conn: sa.Connection, task_id: int) -> _Task:
    row = conn.execute(
        sa.select(count_tasks.c.item_id, count_tasks.c.state, count_tasks.c.started_at)
        .add_columns(locations.c.path)
        .join(locations, locations.c.id == count_tasks.c.location_id)
        .where(count_tasks.c.id == task_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no count task {task_id}")
    if row.state != "open":
        raise ConflictError("path.task_id", f"count task {task_id} is closed")
    return _Task(row.item_id, row.path, aware(row.started_at))


def _item_id(conn: sa.Connection, sku: str) -> int:
    found = conn.execute(sa.select(items.c.id).where(items.c.sku == sku)).scalar_one_or_none()
    if found is None:
        raise FieldError("body.sku", f"no item with sku {sku!r}")
    return int(found)


def _post_line(
    conn: sa.Connection, line_id: int, started_at: datetime, now: datetime, post: Post[T]
) -> T:
    """Post the line as a COUNT at the task's start (its book's time) and mark it posted."""
    line = conn.execute(
        sa.select(count_lines.c.counted, count_lines.c.lot, items.c.sku, items.c.gtin)
        .add_columns(locations.c.code)
        .join(items, items.c.id == count_lines.c.item_id)
        .join(locations, locations.c.id == count_lines.c.location_id)
        .where(count_lines.c.id == line_id)
    ).one()
    txn = StockTransaction(
        id=uuid7(),
        edge=API_EDGE,
        device="count-task",
        seq=line_id,
        kind=TxnKind.COUNT,
        sku=line.sku,
        gtin=None if line.sku is not None else line.gtin,
        lot=line.lot or None,
        qty=line.counted,
        to_location=line.code,
        occurred_at=started_at,
        recorded_at=now,
    )
    posted = post(txn)
    conn.execute(
        sa.update(count_lines)
        .where(count_lines.c.id == line_id)
        .values(state="posted", txn_id=txn.id)
    )
    return posted


def _line_view(r: Any) -> LineView:
    return LineView(
        r.id,
        r.sku,
        r.gtin,
        r.code,
        r.lot or None,
        r.book,
        r.counted,
        None if r.counted is None else r.counted - r.book,
        r.state,
        r.counted_by,
        None if r.counted_at is None else aware(r.counted_at),
        r.approved_by,
        r.txn_id,
    )
