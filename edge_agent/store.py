"""The edge's SQLite file: one writing connection, group commit, and a reader beside it.

Every write (journal appends, recognizer stage commits, ack deletes) is an operation handed to
`Store.write`. The operations waiting when the writer is free run together in ONE SQLite
transaction (one fsync), in the order they were handed over; while that commit runs, new ones
queue for the next. A transaction starts one event-loop iteration after the first operation
that finds the writer free, so what the same iteration hands over (several pumps woken
together, a pump and the stage it wakes) shares it. Each caller awaits its own result, which is
resolved (and its `on_commit` run, in submission order) once the transaction has committed.
Once handed over, an operation runs even if its caller is cancelled.

The operations themselves run on the event loop: between BEGIN and COMMIT they only change
pages in SQLite's cache (CPU, a few microseconds a row). The COMMIT, which writes the WAL and
fsyncs it, runs on a worker thread, and the connection is not touched until it is back. So
the worker takes the GIL back once per transaction: a thread that ran every statement would
take it back after each one, and wait up to the interpreter's switch interval (5 ms) each time
the event loop is busy.

Callers each have at most one operation outstanding (a pump per device, a stage per device, the
publisher's acks), so the queue holds at most about two per device; a transaction runs at most
`ops_per_commit_max` of them.

A transaction that fails (disk full, I/O error, a bug in an operation) is rolled back and fails
every operation in it, and every one handed over after: the file stays consistent, and the edge
stops rather than run on with a store it cannot write (the callers' in-memory counters, such as
the next seq, are ahead of the file then).

Reads that may take a while (the publisher re-reading the outbox after a reconnect) run on a
second, read-only connection on a thread of its own: WAL lets them see the last commit while
the writer goes on.

WAL mode. A transaction is synchronous=FULL (fsync'd at commit) when any of its operations is
durable; one of only non-durable operations (ack deletes) is not fsync'd: losing it to a power
cut only re-sends transactions the aggregator then answers as duplicates, and the next durable
commit makes it durable anyway (the WAL is written in order).
"""

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")
OPS_PER_COMMIT_MAX = 1000
ROWS_PER_STATEMENT_MAX = 64


class StoreError(Exception):
    """The store cannot take writes any more: an earlier transaction failed."""


@dataclass(slots=True)
class StoreStats:
    commits: int = 0
    durable_commits: int = 0  # each one fsync of the WAL (checkpoints add their own)
    ops: int = 0


@dataclass(slots=True)
class _Op:
    run: Callable[[], Any]
    durable: bool
    future: "asyncio.Future[Any]"
    on_commit: Callable[[Any], None] | None


class Store:
    """Create with `await Store.open(path)`; all SQLite work goes through it."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        reader: sqlite3.Connection,
        reader_executor: ThreadPoolExecutor,
    ) -> None:
        self.conn = conn  # the event loop's, except while the worker runs a COMMIT
        self.stats = StoreStats()
        self.ops_per_commit_max = OPS_PER_COMMIT_MAX
        self._executor = executor
        self._reader = reader  # only ever touched on the reader thread
        self._reader_executor = reader_executor
        self._waiting: deque[_Op] = deque()
        self._committing = False  # a transaction is scheduled or running
        self._idle = asyncio.Event()
        self._idle.set()
        self._full_sync = True
        self._failed: BaseException | None = None

    @classmethod
    async def open(cls, path: Path) -> Self:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, path)
            reader = await loop.run_in_executor(reader_executor, _connect_reader, path)
        except BaseException:
            executor.shutdown(wait=False)
            reader_executor.shutdown(wait=False)
            raise
        return cls(conn, executor, reader, reader_executor)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the writing connection outside any transaction (setup: schemas,
        loads), once the writes handed over so far are committed."""
        while self._committing:
            await self._idle.wait()
        return fn(*args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(reader, *args)` on the reader thread, with the read-only connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_executor, fn, self._reader, *args)

    async def write(
        self,
        fn: Callable[[], T],
        *,
        durable: bool = True,
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn()` in the next group transaction; its result once committed.
        `on_commit(result)` runs in submission order, even if the caller has been cancelled
        meanwhile (the operation runs all the same)."""
        if self._failed is not None:
            raise StoreError("an earlier transaction failed") from self._failed
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append(_Op(fn, durable, future, on_commit))
        if not self._committing:
            self._committing = True
            self._idle.clear()
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        count = min(len(self._waiting), self.ops_per_commit_max)
        group = [self._waiting.popleft() for _ in range(count)]
        try:
            results = self._run(group)
        except BaseException as e:
            self._finish(group, [], e)
            return
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, self._commit)
        done.add_done_callback(lambda f: self._finish(group, results, _error(f)))

    def _run(self, group: list[_Op]) -> list[Any]:
        """BEGIN and the operations, on the event loop; ROLLBACK if one of them fails."""
        durable = any(op.durable for op in group)
        if durable != self._full_sync:
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._full_sync = durable
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            return [op.run() for op in group]
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _commit(self) -> None:
        """On the worker thread: write the WAL and fsync it."""
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def _finish(self, group: list[_Op], results: list[Any], error: BaseException | None) -> None:
        if error is not None:
            self._failed = error
            group.extend(self._waiting)
            self._waiting.clear()
        else:
            self.stats.commits += 1
            self.stats.durable_commits += any(op.durable for op in group)
            self.stats.ops += len(group)
        for i, op in enumerate(group):
            if error is not None:
                _settle(op.future, error=error)
                continue
            try:
                if op.on_commit is not None:
                    op.on_commit(results[i])
            except Exception as e:  # a bug in one caller's bookkeeping stays with that caller
                _settle(op.future, error=e)
                continue
            _settle(op.future, results[i])
        if self._waiting:
            self._start()
        else:
            self._committing = False
            self._idle.set()

    async def close(self) -> None:
        """Wait for every operation handed over so far, then close the file."""
        while self._committing:
            await self._idle.wait()
        try:
            self.conn.close()
            await self.read(sqlite3.Connection.close)
        finally:
            self._executor.shutdown(wait=True)
            self._reader_executor.shutdown(wait=True)


def _error(done: "asyncio.Future[None]") -> BaseException | None:
    return asyncio.CancelledError() if done.cancelled() else done.exception()


def _settle(
    future: "asyncio.Future[Any]", result: object = None, error: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def insert_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT rows, up to ROWS_PER_STATEMENT_MAX in one statement (fewer calls than
    executemany, which steps and resets once a row)."""
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 - our own names
    one = f"({', '.join('?' * len(columns))})"
    for start in range(0, len(rows), ROWS_PER_STATEMENT_MAX):
        chunk = rows[start : start + ROWS_PER_STATEMENT_MAX]
        conn.execute(head + ", ".join([one] * len(chunk)), [v for row in chunk for v in row])


def delete_where_in(
    conn: sqlite3.Connection, table: str, column: str, values: Sequence[Any]
) -> int:
    """DELETE the rows whose `column` is one of `values` (chunked as insert_rows); how many."""
    deleted = 0
    for start in range(0, len(values), ROWS_PER_STATEMENT_MAX):
        chunk = values[start : start + ROWS_PER_STATEMENT_MAX]
        marks = ", ".join("?" * len(chunk))
        sql = f"DELETE FROM {table} WHERE {column} IN ({marks})"  # noqa: S608 - our own names
        deleted += conn.execute(sql, chunk).rowcount
    return deleted


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Used by the event loop and, for COMMIT only, by the worker; never by both at once.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _connect_reader(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA query_only=ON")
    return conn
