"""The edge's durable outbox: every transaction is stored here before it is published.

SQLite in WAL mode with synchronous=FULL on one connection. All SQLite work runs on one
worker thread (a single-thread executor) so the event loop never blocks on disk, and the
connection is only ever touched by the thread that opened it.

A row leaves `outbox` only when the aggregator acks its id: accepted/duplicate delete it,
rejected moves it to `rejected_txns`. When the outbox holds `rows_max` rows, `add` waits
(back-pressure) until acks free space; transactions are never dropped.

The publisher reads the outbox as a stream by seq. What `add` has just stored (and returned)
is also kept in memory, up to `unsent_txns_max`, until the publisher takes it, so the
publisher need not hop onto the worker thread and re-parse rows it has just written. Only
after a (re)connect, an ack timeout, or when that memory overflowed does it read SQLite.
"""

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar
from uuid import UUID

from pydantic import ValidationError

from edge_agent.recognizers.base import Clock, Rejected, TxnDraft
from stockwire.ack import Ack, AckStatus
from stockwire.config import describe
from stockwire.ids import uuid7
from stockwire.txn import StockTransaction

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Db:
    """The blocking half: only ever called on the outbox worker thread."""

    def __init__(self, path: Path, edge: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.edge = edge
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_SCHEMA)
        self.next_seq = self._load_seq()
        self.rows: int = self.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def _load_seq(self) -> int:
        row = self.conn.execute("SELECT next_seq FROM meta WHERE edge = ?", (self.edge,)).fetchone()
        stored = 0 if row is None else int(row[0])
        # Never reuse a seq, even if meta was lost: stay above every seq still on file.
        top = self.conn.execute(
            "SELECT max(m) FROM (SELECT max(seq) AS m FROM outbox"
            " UNION ALL SELECT max(seq) FROM rejected_txns)"
        ).fetchone()[0]
        return max(stored, -1 if top is None else int(top) + 1, 0)

    def add(self, drafts: Sequence[TxnDraft], now: datetime) -> list[StockTransaction]:
        made: list[StockTransaction] = []
        seq = self.next_seq
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for draft in drafts:
                txn = _build(draft, self.edge, seq, now)
                if isinstance(txn, Rejected):
                    self._insert_rejected(txn)
                    continue
                self.conn.execute(
                    "INSERT INTO outbox (seq, id, body, created_at) VALUES (?, ?, ?, ?)",
                    (seq, str(txn.id), txn.model_dump_json(), now.isoformat()),
                )
                made.append(txn)
                seq += 1
            self.conn.execute(
                "INSERT INTO meta (edge, next_seq) VALUES (?, ?)"
                " ON CONFLICT (edge) DO UPDATE SET next_seq = excluded.next_seq",
                (self.edge, seq),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.next_seq = seq
        self.rows += len(made)
        return made

    def add_rejected(self, rejected: Rejected) -> None:
        self._insert_rejected(rejected)

    def _insert_rejected(self, r: Rejected) -> None:
        self.conn.execute(
            "INSERT INTO rejected_readings (device, raw, reason, at) VALUES (?, ?, ?, ?)",
            (r.device, r.raw, r.reason, r.at.isoformat()),
        )

    def read(self, from_seq: int, limit: int, exclude: frozenset[UUID]) -> "Page":
        skip = {str(u) for u in exclude}
        out: list[StockTransaction] = []
        rows = self.conn.execute(
            "SELECT id, body FROM outbox WHERE seq >= ? ORDER BY seq", (from_seq,)
        )
        for txn_id, body in rows:
            if txn_id in skip:
                continue
            out.append(StockTransaction.model_validate_json(body))
            if len(out) >= limit:
                return Page(out, out[-1].seq + 1)
        # Every row at or after from_seq is in `out` or excluded: read on after the last seq.
        return Page(out, self.next_seq)

    def apply_ack(self, ack: Ack, now: datetime) -> int:
        # Without an fsync of its own: a delete lost to a power cut only means the txn is
        # re-sent and acked as a duplicate, and the next add's fsync makes it durable anyway
        # (the WAL is written in order). Adds stay synchronous=FULL.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            return self._apply_ack(ack, now)
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    def _apply_ack(self, ack: Ack, now: datetime) -> int:
        removed = 0
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for result in ack.results:
                if result.status is AckStatus.REJECTED:
                    self.conn.execute(
                        "INSERT INTO rejected_txns (id, seq, body, reason, at)"
                        " SELECT id, seq, body, ?, ? FROM outbox WHERE id = ?",
                        (result.reason, now.isoformat(), str(result.id)),
                    )
                cur = self.conn.execute("DELETE FROM outbox WHERE id = ?", (str(result.id),))
                removed += cur.rowcount
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.rows -= removed
        return removed

    def close(self) -> None:
        self.conn.close()


def _build(draft: TxnDraft, edge: str, seq: int, now: datetime) -> StockTransaction | Rejected:
    values: dict[str, Any] = {f.name: getattr(draft, f.name) for f in fields(draft)}
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
    """Async facade over the SQLite outbox. Create with `await Outbox.open(...)`."""

    def __init__(
        self,
        db: _Db,
        executor: ThreadPoolExecutor,
        rows_max: int,
        clock: Clock,
        unsent_txns_max: int = UNSENT_TXNS_MAX,
    ) -> None:
        self._db = db
        self._executor = executor
        self.rows_max = rows_max
        self._clock = clock
        self._unsent = _Unsent(db.next_seq, unsent_txns_max)
        self._add_lock = asyncio.Lock()
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
    ) -> Self:
        assert rows_max >= 1
        assert unsent_txns_max >= 0
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _Db, path, edge)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, rows_max, clock or utc_now, unsent_txns_max)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def count(self) -> int:
        return self._db.rows

    async def add(self, drafts: Sequence[TxnDraft]) -> list[StockTransaction]:
        """Store drafts as transactions in one SQLite transaction; waits while the outbox is full.

        A draft that does not make a valid StockTransaction becomes a rejected reading.
        The stored transactions are also kept for `take_unsent` (they are committed first).
        Once the write has started, cancelling the caller does not stop it.
        """
        if not drafts:
            return []
        async with self._add_lock:
            await self._wait_for_space(len(drafts))
            loop = asyncio.get_running_loop()
            stored = loop.run_in_executor(self._executor, self._db.add, drafts, self._clock())
            stored.add_done_callback(self._keep_unsent)  # in seq order, even if we are cancelled
            return await asyncio.shield(stored)

    def _keep_unsent(self, stored: "asyncio.Future[list[StockTransaction]]") -> None:
        if not stored.cancelled() and stored.exception() is None:
            self._unsent.extend(stored.result())

    async def _wait_for_space(self, wanted: int) -> None:
        # An add bigger than rows_max still goes in when the outbox is empty (no deadlock).
        while self._db.rows > 0 and self._db.rows + wanted > self.rows_max:
            if not self.full:
                self.full = True
                self.full_changed.set()
                self.full_waits += 1
                log.warning(
                    "outbox full (%d of %d rows): holding new transactions until acks free space",
                    self._db.rows,
                    self.rows_max,
                )
            self._freed.clear()
            await self._freed.wait()
        if self.full:
            self.full = False
            self.full_changed.set()
            log.info("outbox has space again (%d rows)", self._db.rows)

    async def add_rejected(self, rejected: Rejected) -> None:
        await self._call(self._db.add_rejected, rejected)

    async def pending(
        self, limit: int, exclude: set[UUID] | frozenset[UUID] = frozenset()
    ) -> list[StockTransaction]:
        """The oldest `limit` rows not in `exclude`, in seq order."""
        return (await self.read(0, limit, exclude)).txns

    async def read(
        self, from_seq: int, limit: int, exclude: set[UUID] | frozenset[UUID] = frozenset()
    ) -> Page:
        """From SQLite: up to `limit` rows with seq >= from_seq not in `exclude`, in seq order."""
        return await self._call(self._db.read, from_seq, limit, frozenset(exclude))

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
        """Delete accepted/duplicate rows, move rejected ones aside; returns rows removed."""
        removed = await self._call(self._db.apply_ack, ack, self._clock())
        if removed:
            self._freed.set()
        return removed

    async def close(self) -> None:
        try:
            await self._call(self._db.close)
        finally:
            self._executor.shutdown(wait=True)
