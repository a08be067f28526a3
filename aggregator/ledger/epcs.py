"""EPCs in the ledger: where each tag is, and the rules that keep a tag from being counted twice.

Every movement of a transaction with EPCs moves each of its EPCs (epc_moves) and puts the EPC
where the movement ends (epcs: in_stock at a physical location, departed to a virtual one).
Checked for each such transaction, in posting order, against where the ledger holds its EPCs
(as the transactions before it in the same posting leave them); any finding sends it to review:

- item-level tags: `qty` must equal the number of EPCs, and no EPC may be listed twice;
- an EPC held in stock at a physical location is received again (from a virtual location:
  receipt, return, adjustment in, transfer from @transit): it would be counted twice;
- an EPC held in stock at a physical location is moved from another physical location (unless
  the ledger is told to let it follow such moves: stock may move between doors and shelves
  without its tags being read, as a barcode putaway does).

An EPC the ledger has never seen, or has seen depart, may arrive anywhere. Counts keep their
EPCs in the body but move none (a count moves the variance, not tags). A pending transaction
holds the EPCs the ledger has placed (state in_review); approving it applies its EPC moves,
whatever the state then (a person decided); voiding it releases them.
"""

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from aggregator.ledger.apply import Leg
from aggregator.ledger.bulk import encoding, insert_rows
from aggregator.ledger.sides import sides
from aggregator.schema import epc_moves, epcs, locations
from stockwire.txn import StockTransaction, TxnKind

# EPCs per IN (...) list and per statement: well under both databases' parameter limits.
EPCS_PER_QUERY_MAX = 5000
REASON_EPCS_NAMED_MAX = 3
REASON_CHARS_MAX = 500  # transactions.review_reason

_MOVE_COLUMNS = (
    "epc",
    "movement_id",
    "txn_id",
    "item_id",
    "from_location_id",
    "to_location_id",
    "occurred_at",
    "committed_at",
)
_STATE_COLUMNS = (
    "epc",
    "item_id",
    "location_id",
    "state",
    "txn_id",
    "movement_id",
    "updated_at",
)
_HELD = (
    sa.select(epcs.c.epc, locations.c.code)
    .join(locations, locations.c.id == epcs.c.location_id)
    .where(epcs.c.epc.in_(sa.bindparam("epcs", expanding=True)))
    .order_by(epcs.c.epc)
)


def tags(txn: StockTransaction) -> list[str]:
    """The EPCs a transaction moves: upper-case hex, each once, in the order given."""
    if txn.kind is TxnKind.COUNT:
        return []
    return list(dict.fromkeys(e.upper() for e in txn.epcs))


def held(conn: sa.Connection, wanted: Iterable[str]) -> dict[str, str]:
    """Where the ledger holds each of `wanted` (EPC -> location code); locked on PostgreSQL."""
    at: dict[str, str] = {}
    query = _HELD.with_for_update(of=epcs) if conn.dialect.name == "postgresql" else _HELD
    for chunk in _chunks(sorted(set(wanted))):
        at.update((r.epc, r.code) for r in conn.execute(query, {"epcs": chunk}))
    return at


class EpcBook:
    """Where the EPCs of one posting are, as the transactions before each one leave them."""

    def __init__(self, at: dict[str, str], *, review_moved_elsewhere: bool = True) -> None:
        self.known = frozenset(at)  # the EPCs that had a place before this posting
        self._at = at
        self._review_moved_elsewhere = review_moved_elsewhere

    @classmethod
    def load(
        cls, conn: sa.Connection, txns: Iterable[StockTransaction], *, review_moved_elsewhere: bool
    ) -> "EpcBook":
        wanted = [e for t in txns if t.epcs for e in tags(t)]
        at = held(conn, wanted) if wanted else {}
        return cls(at, review_moved_elsewhere=review_moved_elsewhere)

    def review(self, txn: StockTransaction) -> str | None:
        """Why `txn` must wait in review, or None."""
        if not txn.epcs or txn.kind is TxnKind.COUNT:
            return None
        named = tags(txn)
        if len(named) != len(txn.epcs):
            return f"{len(txn.epcs) - len(named)} EPC(s) listed twice"
        if txn.qty != len(named):
            return f"qty {txn.qty} but {len(named)} EPC(s): item-level tags count one unit each"
        src, _ = sides(txn)
        strict = self._review_moved_elsewhere
        elsewhere = [(e, at) for e in named if _elsewhere(src, at := self._at.get(e), strict)]
        return _held_reason(src, elsewhere) if elsewhere else None

    def move(self, txn: StockTransaction) -> None:
        """`txn` posts: its EPCs are where it takes them."""
        if txn.epcs and txn.kind is not TxnKind.COUNT:
            _, dst = sides(txn)
            self._at.update((e, dst) for e in tags(txn))


def _elsewhere(src: str, at: str | None, moved_too: bool) -> bool:
    """An EPC in stock at a physical location other than `src`: a receipt of it (from a
    virtual `src`) would count it twice; a move from another physical place (`moved_too`)
    contradicts the ledger."""
    if at is None or at.startswith("@") or at == src:
        return False
    return moved_too or src.startswith("@")


def _held_reason(src: str, elsewhere: Sequence[tuple[str, str | None]]) -> str:
    shown = ", ".join(f"{e} at {at}" for e, at in elsewhere[:REASON_EPCS_NAMED_MAX])
    more = len(elsewhere) - REASON_EPCS_NAMED_MAX
    tail = f" and {more} more" if more > 0 else ""
    if src.startswith("@"):
        reason = f"EPC(s) already in stock (from {src} they would count twice): {shown}{tail}"
    else:
        reason = f"EPC(s) in stock elsewhere than {src}: {shown}{tail}"
    return reason if len(reason) <= REASON_CHARS_MAX else reason[: REASON_CHARS_MAX - 3] + "..."


def record(
    conn: sa.Connection,
    legs: Sequence[tuple[Leg, int]],
    now: datetime,
    known: frozenset[str] | None = None,
) -> set[str]:
    """Store the EPC moves of `legs` (leg, movement id) and where their EPCs are now.

    `known`: the EPCs that already have a place (as `held` found them), else looked up here.
    Returns the EPCs placed.
    """
    tagged = [
        (leg, mid)
        for leg, mid in legs
        if leg.txn.epcs and leg.txn.kind is not TxnKind.COUNT and leg.settles is None
    ]
    if not tagged:
        return set()
    enc = encoding(conn)
    at = enc.time(now)
    moves: list[tuple[object, ...]] = []
    last: dict[str, tuple[object, ...]] = {}
    for leg, mid in tagged:
        txn_id, occurred_at = enc.uuid(leg.txn.id), enc.time(leg.txn.occurred_at)
        state = "departed" if leg.dst.virtual else "in_stock"
        for e in tags(leg.txn):
            moves.append((e, mid, txn_id, leg.item.id, leg.src.id, leg.dst.id, occurred_at, at))
            last[e] = (e, leg.item.id, leg.dst.id, state, txn_id, mid, at)
    insert_rows(conn, epc_moves, _MOVE_COLUMNS, moves)
    if known is None:
        known = frozenset(held(conn, last))
    # A new EPC is inserted: a replica that placed it meanwhile makes this posting retry.
    places = sorted(last.items())
    insert_rows(conn, epcs, _STATE_COLUMNS, [row for e, row in places if e not in known])
    _update_places(conn, [row for e, row in places if e in known])
    return set(last)


def _update_places(conn: sa.Connection, rows: list[tuple[object, ...]]) -> None:
    if not rows:
        return
    mark = encoding(conn).mark
    sql = (
        f"UPDATE epcs SET item_id = {mark}, location_id = {mark},"  # noqa: S608 (marks only)
        f" state = CASE WHEN review_txn_id IS NULL THEN {mark} ELSE 'in_review' END,"
        f" txn_id = {mark}, movement_id = {mark}, updated_at = {mark} WHERE epc = {mark}"
    )
    conn.exec_driver_sql(sql, [(*row[1:], row[0]) for row in rows])


def hold(conn: sa.Connection, pending: Sequence[StockTransaction], placed: set[str]) -> None:
    """EPCs of transactions pending in review wait with them (those the ledger has placed)."""
    enc = encoding(conn)
    rows = [(enc.uuid(t.id), e) for t in pending if t.epcs for e in tags(t) if e in placed]
    if rows:
        mark = enc.mark
        sql = f"UPDATE epcs SET review_txn_id = {mark}, state = 'in_review' WHERE epc = {mark}"  # noqa: S608
        conn.exec_driver_sql(sql, rows)


def release(conn: sa.Connection, txn_id: UUID) -> None:
    """The EPCs held by a transaction leave review: in stock or departed, as where they are."""
    virtual = (
        sa.select(locations.c.virtual).where(locations.c.id == epcs.c.location_id).scalar_subquery()
    )
    conn.execute(
        sa.update(epcs)
        .where(epcs.c.review_txn_id == txn_id)
        .values(
            review_txn_id=None,
            state=sa.case((virtual == sa.true(), "departed"), else_="in_stock"),
        )
    )


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), EPCS_PER_QUERY_MAX):
        yield values[start : start + EPCS_PER_QUERY_MAX]
