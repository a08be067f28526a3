"""Counts by event time: a count's book is the balance as of when it was taken, and a movement
that arrives late, with an event time before a count already posted at its balance, owes that
count a compensation.

A count at T says "at T there were C". Its variance is C minus the balance as of T (movements
with occurred_at <= T, wherever they were committed), and its adjustment happens at T: movements
after T stay on top of it, so today's balance is C plus what happened since.

A movement posted later with an event time t <= T at the same (item, location, lot) would make
the as-of balance at T differ from C. Nothing is rewritten: the late movement posts at t, and a
compensating movement (the same quantity, between the location and @loss, the other way) posts
at T, the event time of the earliest such count; it is linked to that count (count_settlements).
Then the balance as of T is C again, every later count still holds (the two cancel from T on),
balances stay the sum of the movements and as-of stays a replay of them. A count's own
adjustment settles with a count strictly after it (two counts at one time: the later posted
wins). Reversals are an operator's explicit correction and owe nothing.

Per posting: whether any count was taken at or after its earliest event time (one indexed
lookup; most postings stop there), then the counts at the touched balances from that time on,
and the movements after the earliest count's time (only when the posting has counts).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa

from aggregator.schema import counts, movements

BalanceKey = tuple[int, int, str]  # (item_id, location_id, lot)

# Any count taken at or after a time (ix_counts_counted_at): SQLite keeps UTC text.
_COUNTED_SINCE = (
    sa.select(sa.literal(1)).where(counts.c.counted_at >= sa.bindparam("since")).limit(1)
)


@dataclass(frozen=True, slots=True)
class CountMark:
    at: datetime
    txn_id: UUID


@dataclass(slots=True)
class Timeline:
    """The counts at some balances, and the movements at them after some time, as the posting
    goes on (what it plans is added as it plans it)."""

    marks: defaultdict[BalanceKey, list[CountMark]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # (event time, signed qty) per balance counted in this posting (`watched`): the stored
    # movements after `since`, and the planned; only those balances' books are asked for.
    since: datetime | None = None
    watched: frozenset[BalanceKey] = frozenset()
    moves: defaultdict[BalanceKey, list[tuple[datetime, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def book_at(self, key: BalanceKey, at: datetime, now: int) -> int:
        """The balance at `key` as of `at`, given it is `now` today (with what is planned)."""
        return now - sum(q for t, q in self.moves.get(key, ()) if t > at)

    def counted(self, key: BalanceKey, at: datetime, txn_id: UUID) -> None:
        self.marks[key].append(CountMark(at, txn_id))

    def moved(self, key: BalanceKey, at: datetime, qty: int) -> None:
        if key in self.watched:
            self.moves[key].append((at, qty))

    def owed(self, key: BalanceKey, at: datetime, *, strictly: bool) -> CountMark | None:
        """The earliest count at `key` taken at or after `at` (strictly after: `strictly`)."""
        later = [m for m in self.marks.get(key, ()) if m.at > at or (m.at == at and not strictly)]
        return min(later, key=lambda m: m.at) if later else None


def taken_since(conn: sa.Connection, at: datetime) -> bool:
    """Whether any count was taken at or after `at` (one indexed lookup)."""
    return conn.execute(_COUNTED_SINCE, {"since": at.astimezone(UTC)}).first() is not None


def load(
    conn: sa.Connection,
    touched: Iterable[tuple[BalanceKey, datetime]],
    counted: Sequence[tuple[BalanceKey, datetime]],
    physical: set[int],
) -> Timeline:
    """The counts at the physical balances `touched` from the earliest of their times, and the
    movements at the `counted` balances after the earliest count time."""
    timeline = Timeline(watched=frozenset(k for k, _ in counted))
    touched = [(k, at) for k, at in touched if k[1] in physical]
    if touched:
        since = min(at for _, at in touched)
        query = sa.select(
            counts.c.item_id,
            counts.c.location_id,
            counts.c.lot,
            counts.c.counted_at,
            counts.c.txn_id,
        ).where(
            counts.c.item_id.in_(sorted({k[0] for k, _ in touched})),  # few; keys: many
            counts.c.counted_at >= since.astimezone(UTC),  # SQLite: UTC text
        )
        keys = {k for k, _ in touched}
        for r in conn.execute(query):
            key = (r.item_id, r.location_id, r.lot)
            if key in keys:
                timeline.counted(key, aware(r.counted_at), r.txn_id)
    if counted:
        since = min(at for _, at in counted)
        timeline.since = since
        _load_moves(conn, timeline, sorted({k for k, _ in counted}), since)
    return timeline


def _load_moves(
    conn: sa.Connection, timeline: Timeline, keys: list[BalanceKey], since: datetime
) -> None:
    items = sorted({k[0] for k in keys})
    query = sa.select(
        movements.c.item_id,
        movements.c.lot,
        movements.c.from_location_id,
        movements.c.to_location_id,
        movements.c.qty,
        movements.c.occurred_at,
    ).where(movements.c.item_id.in_(items), movements.c.occurred_at > since.astimezone(UTC))
    wanted = set(keys)
    for r in conn.execute(query):
        at = aware(r.occurred_at)
        for place, qty in ((r.from_location_id, -r.qty), (r.to_location_id, r.qty)):
            key = (r.item_id, place, r.lot)
            if key in wanted:
                timeline.moved(key, at, qty)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
