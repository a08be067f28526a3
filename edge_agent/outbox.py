"""The edge's durable outbox: every transaction is stored here before it is published.

Its tables live in the edge's SQLite file (edge_agent/store.py: one writing connection, group
commit), next to the readings journal, so a recognizer stage stores its transactions, its
rejected readings and its journal cursor in ONE transaction.

A row leaves `outbox` only when the aggregator acks its id: accepted/duplicate delete it,
rejected moves it to `rejected_txns`. When the outbox holds `rows_max` rows, `add` waits
(back-pressure) until acks free space; transactions are never dropped.

The publisher reads the outbox as a stream by seq. What `add` has just stored (and returned)
is also kept in memory, up to `unsent_txns_max`, until the publisher takes it, so the
publisher need not hop onto the reader thread and re-parse rows it has just written. Only
after a (re)connect, an ack timeout, or when that memory overflowed does it read SQLite.
"""

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Self
from uuid import UUID

from pydantic import ValidationError

from edge_agent.recognizers.base import DRAFT_FIELDS, Clock, Rejected, TxnDraft
from edge_agent.store import Store, delete_where_in, insert_rows
from stockwire.ack import Ack, AckStatus
from stockwire.config import describe
from stockwire.ids import uuid7
from stockwire.txn import StockTransaction

log = logging.getLogger(__name__)

UNSENT_TXNS_MAX = 500  # default for OutboxSettings.unsent_txns_max (~0.75 MB when full)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (edge TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_txns (
    id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, reason TEXT, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_readings (
    device TEXT NOT NULL, raw TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL);
"""

Along = Callable[[], object]  # more work for the same transaction


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Tables:
    """The outbox's tables on the store's writing connection; the writes run inside the
    store's group transaction."""

    def __init__(self, conn: sqlite3.Connection, edge: str) -> None:
        self.conn = conn
        self.edge = edge
        conn.executescript(_SCHEMA)
        self.next_seq = self._load_seq()  # at open; Outbox assigns seqs from here on
        self.rows: int = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def _load_seq(self) -> int:
        row = self.conn.execute("SELECT next_seq FROM meta WHERE edge = ?", (self.edge,)).fetchone()
        stored = 0 if row is None else int(row[0])
        # Never reuse a seq, even if meta was lost: stay above every seq still on file.
        top = self.conn.execute(
            "SELECT max(m) FROM (SELECT max(seq) AS m FROM outbox"
            " UNION ALL SELECT max(seq) FROM rejected_txns)"
        ).fetchone()[0]
        return max(stored, -1 if top is None else int(top) + 1, 0)

    def add(
        self,
        rows: list[tuple[int, str, str, str]],
        next_seq: int,
        rejected: Sequence[Rejected],
        along: Along | None,
    ) -> None:
        if rows:
            insert_rows(self.conn, "outbox", ("seq", "id", "body", "created_at"), rows)
            self.conn.execute(
                "INSERT INTO meta (edge, next_seq) VALUES (?, ?)"
                " ON CONFLICT (edge) DO UPDATE SET next_seq = excluded.next_seq",
                (self.edge, next_seq),
            )
        self.insert_rejected(rejected)
        if along is not None:
            along()
        self.rows += len(rows)

    def insert_rejected(self, rejected: Sequence[Rejected]) -> None:
        if rejected:
            rows = [(r.device, r.raw, r.reason, r.at.isoformat()) for r in rejected]
            insert_rows(self.conn, "rejected_readings", ("device", "raw", "reason", "at"), rows)

    def apply_ack(self, ack: Ack, now: datetime) -> int:
        rejected = [
            (r.reason, now.isoformat(), str(r.id))
            for r in ack.results
            if r.status is AckStatus.REJECTED
        ]
        if rejected:
            self.conn.executemany(
                "INSERT INTO rejected_txns (id, seq, body, reason, at)"
                " SELECT id, seq, body, ?, ? FROM outbox WHERE id = ?",
                rejected,
            )
        removed = delete_where_in(self.conn, "outbox", "id", [str(r.id) for r in ack.results])
        self.rows -= removed
        return removed


def _read_page(
    conn: sqlite3.Connection,
    edge: str,
    from_seq: int,
    limit: int,
    exclude: set[UUID] | frozenset[UUID],
) -> "Page":
    """On the reader connection, in one read transaction (rows and meta of one commit)."""
    skip = {str(u) for u in exclude}
    out: list[StockTransaction] = []
    conn.execute("BEGIN")
    try:
        rows = conn.execute("SELECT id, body FROM outbox WHERE seq >= ? ORDER BY seq", (from_seq,))
        for txn_id, body in rows:
            if txn_id in skip:
                continue
            out.append(StockTransaction.model_validate_json(body))
            if len(out) >= limit:
                return Page(out, out[-1].seq + 1)
        meta = conn.execute("SELECT next_seq FROM meta WHERE edge = ?", (edge,)).fetchone()
    finally:
        conn.execute("COMMIT")
    # Every row at or after from_seq is in `out` or excluded: read on after the last seq.
    return Page(out, max(0 if meta is None else int(meta[0]), from_seq))


def _oldest_created_at(conn: sqlite3.Connection) -> datetime | None:
    row = conn.execute("SELECT created_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
    return None if row is None else datetime.fromisoformat(row[0])


def _build(draft: TxnDraft, edge: str, seq: int, now: datetime) -> StockTransaction | Rejected:
    values: dict[str, Any] = {name: getattr(draft, name) for name in DRAFT_FIELDS}
    try:
        return StockTransaction(id=uuid7(), edge=edge, seq=seq, recorded_at=now, **values)
    except ValidationError as e:
        raw = draft.evidence.raw or repr(draft)
        return Rejected(draft.device, raw, describe(e, "transaction"), draft.occurred_at)


@dataclass(frozen=True, slots=True)
class Page:
    """Rows read from SQLite in seq order; read on from `next_seq`."""

    txns: list[StockTransaction]
    next_seq: int


class _Unsent:
    """Just-stored transactions in seq order, kept until the publisher takes them.

    Seqs are contiguous (a rejected draft takes none), so the deque holds exactly the seqs
    [from_seq, end_seq). Overflow drops the oldest: they are still in SQLite, where the
    publisher reads them because they are now below `from_seq`.
    """

    def __init__(self, next_seq: int, txns_max: int) -> None:
        self.txns: deque[StockTransaction] = deque()
        self.from_seq = next_seq
        self.end_seq = next_seq
        self.txns_max = txns_max
        self.overflows = 0

    def extend(self, made: Sequence[StockTransaction]) -> None:
        if not made:
            return
        assert made[0].seq == self.end_seq, (made[0].seq, self.end_seq)
        self.txns.extend(made)
        self.end_seq = made[-1].seq + 1
        excess = len(self.txns) - self.txns_max
        if excess > 0:
            self.overflows += 1
            self._drop(excess)

    def count(self, from_seq: int) -> int | None:
        if from_seq < self.from_seq:
            return None
        return max(0, self.end_seq - from_seq)

    def take(self, from_seq: int, limit: int) -> list[StockTransaction] | None:
        if from_seq < self.from_seq:
            return None
        self._drop(min(from_seq, self.end_seq) - self.from_seq)  # already read from SQLite
        taken = [self.txns.popleft() for _ in range(min(limit, len(self.txns)))]
        self.from_seq += len(taken)
        return taken

    def _drop(self, n: int) -> None:
        for _ in range(n):
            self.txns.popleft()
        self.from_seq += n


class Outbox:
    """Async facade over the outbox tables. Create with `await Outbox.open(...)`."""

    def __init__(
        self,
        store: Store,
        tables: _Tables,
        rows_max: int,
        clock: Clock,
        unsent_txns_max: int = UNSENT_TXNS_MAX,
        owns_store: bool = False,
    ) -> None:
        self._store = store
        self._tables = tables
        self._owns_store = owns_store
        self.rows_max = rows_max
        self._clock = clock
        self._next_seq = tables.next_seq  # assigned here, in submission (= commit) order
        self._unsent = _Unsent(tables.next_seq, unsent_txns_max)
        self._space_lock = asyncio.Lock()
        self._reserved = 0  # rows of adds handed to the store and not committed yet
        self._freed = asyncio.Event()
        self.full_waits = 0  # times an add had to wait for acks to free space
        self.full = False
        self.full_changed = asyncio.Event()  # set whenever `full` flips; the reader clears it

    @classmethod
    async def open(
        cls,
        path: Path,
        edge: str,
        rows_max: int,
        clock: Clock | None = None,
        unsent_txns_max: int = UNSENT_TXNS_MAX,
        store: Store | None = None,
    ) -> Self:
        """The outbox in `store`'s file, or in its own store on `path` when none is given."""
        assert rows_max >= 1
        assert unsent_txns_max >= 0
        owns_store = store is None
        store = store or await Store.open(path)
        try:
            tables = await store.call(_Tables, store.conn, edge)
        except BaseException:
            if owns_store:
                await store.close()
            raise
        return cls(store, tables, rows_max, clock or utc_now, unsent_txns_max, owns_store)

    def count(self) -> int:
        return self._tables.rows

    async def oldest_created_at(self) -> datetime | None:
        """When the oldest row still in the outbox was stored; None when it is empty."""
        if not self._tables.rows:
            return None
        return await self._store.read(_oldest_created_at)

    @property
    def next_seq(self) -> int:
        """The seq the next transaction gets (seqs are never reused)."""
        return self._next_seq

    def space(self) -> int:
        """Rows an add can take now without waiting."""
        return max(0, self.rows_max - self._tables.rows - self._reserved)

    async def add(
        self,
        drafts: Sequence[TxnDraft],
        *,
        rejected: Sequence[Rejected] = (),
        along: Along | None = None,
    ) -> list[StockTransaction]:
        """Store drafts as transactions in one SQLite transaction; waits while the outbox is full.

        A draft that does not make a valid StockTransaction becomes a rejected reading, as do
        `rejected`; `along` runs in the same transaction (a stage's journal cursor). The stored
        transactions are also kept for `take_unsent` (they are committed first). Once the write
        has started, cancelling the caller does not stop it.
        """
        if not drafts and not rejected and along is None:
            return []
        async with self._space_lock:
            await self._wait_for_space(len(drafts))
        made, refused, rows = self._build(drafts)
        self._reserved += len(made)
        add = partial(self._tables.add, rows, self._next_seq, [*refused, *rejected], along)
        await self._store.write(add, on_commit=lambda _: self._stored(made))
        return made

    def _build(
        self, drafts: Sequence[TxnDraft]
    ) -> tuple[list[StockTransaction], list[Rejected], list[tuple[int, str, str, str]]]:
        """Transactions with the next seqs, the drafts they refuse, and their rows."""
        now = self._clock()
        created_at = now.isoformat()
        made: list[StockTransaction] = []
        refused: list[Rejected] = []
        rows = []
        for draft in drafts:
            txn = _build(draft, self._tables.edge, self._next_seq, now)
            if isinstance(txn, Rejected):
                refused.append(txn)
                continue
            rows.append((txn.seq, str(txn.id), txn.model_dump_json(), created_at))
            made.append(txn)
            self._next_seq += 1
        return made, refused, rows

    def _stored(self, made: list[StockTransaction]) -> None:
        self._reserved -= len(made)
        self._unsent.extend(made)  # in seq order: the store commits in submission order

    async def _wait_for_space(self, wanted: int) -> None:
        # An add bigger than rows_max still goes in when the outbox is empty (no deadlock).
        while (used := self._tables.rows + self._reserved) > 0 and used + wanted > self.rows_max:
            if not self.full:
                self.full = True
                self.full_changed.set()
                self.full_waits += 1
                log.warning(
                    "outbox full (%d of %d rows): holding new transactions until acks free space",
                    used,
                    self.rows_max,
                )
            self._freed.clear()
            await self._freed.wait()
        if self.full:
            self.full = False
            self.full_changed.set()
            log.info("outbox has space again (%d rows)", self._tables.rows)

    async def add_rejected(self, rejected: Rejected) -> None:
        await self._store.write(partial(self._tables.insert_rejected, [rejected]))

    async def pending(
        self, limit: int, exclude: set[UUID] | frozenset[UUID] = frozenset()
    ) -> list[StockTransaction]:
        """The oldest `limit` rows not in `exclude`, in seq order."""
        return (await self.read(0, limit, exclude)).txns

    async def read(
        self, from_seq: int, limit: int, exclude: set[UUID] | frozenset[UUID] = frozenset()
    ) -> Page:
        """From SQLite: up to `limit` rows with seq >= from_seq not in `exclude`, in seq order."""
        return await self._store.read(_read_page, self._tables.edge, from_seq, limit, exclude)

    def unsent_count(self, from_seq: int) -> int | None:
        """How many stored transactions from `from_seq` on are held in memory; None when
        memory does not hold all of them (read SQLite from `from_seq` first)."""
        return self._unsent.count(from_seq)

    def take_unsent(self, from_seq: int, limit: int) -> list[StockTransaction] | None:
        """Take (and forget) up to `limit` stored transactions from `from_seq` on, from memory;
        None when memory does not hold all of them (read SQLite from `from_seq` first)."""
        return self._unsent.take(from_seq, limit)

    @property
    def unsent_overflows(self) -> int:
        """Times `unsent_txns_max` was exceeded and the oldest were left to SQLite."""
        return self._unsent.overflows

    async def apply_ack(self, ack: Ack) -> int:
        """Delete accepted/duplicate rows, move rejected ones aside; returns rows removed.

        Not fsync'd by itself (see edge_agent/store.py)."""
        apply = partial(self._tables.apply_ack, ack, self._clock())
        removed = await self._store.write(apply, durable=False)
        if removed:
            self._freed.set()
        return removed

    async def close(self) -> None:
        """Closes the store too when the outbox opened its own."""
        if self._owns_store:
            await self._store.close()
