"""The edge's SQLite file: one connection on one worker thread, and group commit.

Every write (journal appends, recognizer stage commits, ack deletes) is an operation handed to
`Store.write`. The operations waiting when the worker is free run together in ONE SQLite
transaction (one fsync), in the order they were handed over; while that commit runs, new ones
queue for the next. A commit starts one event-loop iteration after the first operation that
finds the worker free, so what the same iteration hands over (several pumps woken together)
shares it. Each caller awaits its own result, which is resolved (and its `on_commit`
run, in submission order) once the transaction has committed. Once handed over, an operation
runs even if its caller is cancelled.

Callers each have at most one operation outstanding (a pump per device, a stage per device, the
publisher's acks), so the queue holds at most about two per device; a transaction runs at most
`ops_per_commit_max` of them.

A transaction that fails (disk full, I/O error, a bug in an operation) fails every operation in
it and is rolled back: the file stays consistent, and the edge stops rather than run on with a
store it cannot write.

WAL mode. A transaction is synchronous=FULL (fsync'd at commit) when any of its operations is
durable; one of only non-durable operations (ack deletes) is not fsync'd: losing it to a power
cut only re-sends transactions the aggregator then answers as duplicates, and the next durable
commit makes it durable anyway (the WAL is written in order).
"""

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")
OPS_PER_COMMIT_MAX = 1000


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

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self.conn = conn  # only ever touched on the worker thread
        self.stats = StoreStats()
        self.ops_per_commit_max = OPS_PER_COMMIT_MAX
        self._executor = executor
        self._waiting: deque[_Op] = deque()
        self._committing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._full_sync = True
        self._rollback_hooks: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, path: Path) -> Self:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(conn, executor)

    def after_rollback(self, hook: Callable[[], None]) -> None:
        """Run `hook()` on the worker thread after a failed transaction is rolled back: whoever
        keeps counters beside the tables (next seq, row counts) reloads them from the file."""
        self._rollback_hooks.append(hook)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the worker thread, between transactions (no group, no commit)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def write(
        self,
        fn: Callable[[], T],
        *,
        durable: bool = True,
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn()` on the worker thread in the next group transaction; its result once
        committed. `on_commit(result)` runs on the event loop, in submission order, even if
        the caller has been cancelled meanwhile."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Op(fn, durable, future, on_commit))
        if not self._committing:
            self._committing = True
            self._idle.clear()
            asyncio.get_running_loop().call_soon(self._start)
        return await asyncio.shield(future)

    def _start(self) -> None:
        count = min(len(self._waiting), self.ops_per_commit_max)
        group = [self._waiting.popleft() for _ in range(count)]
        durable = any(op.durable for op in group)
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, self._commit, [op.run for op in group], durable)
        done.add_done_callback(lambda f: self._committed(group, f))

    def _commit(self, fns: list[Callable[[], Any]], durable: bool) -> list[Any]:
        """On the worker thread: one transaction for the whole group."""
        if durable != self._full_sync:
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._full_sync = durable
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            results = [fn() for fn in fns]
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            for hook in self._rollback_hooks:
                hook()
            raise
        return results

    def _committed(self, group: list[_Op], done: "asyncio.Future[list[Any]]") -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is None:
            self.stats.commits += 1
            self.stats.durable_commits += any(op.durable for op in group)
            self.stats.ops += len(group)
        for i, op in enumerate(group):
            if error is not None:
                op.future.set_exception(error)
                continue
            result = done.result()[i]
            try:
                if op.on_commit is not None:
                    op.on_commit(result)
            except Exception as e:  # a bug in one caller's bookkeeping stays with that caller
                op.future.set_exception(e)
                continue
            op.future.set_result(result)
        if self._waiting:
            self._start()
        else:
            self._committing = False
            self._idle.set()

    async def close(self) -> None:
        """Wait for every operation handed over so far, then close the file."""
        while self._committing or self._waiting:
            await self._idle.wait()
        try:
            await self.read(self.conn.close)
        finally:
            self._executor.shutdown(wait=True)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn
