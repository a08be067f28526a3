"""The one thread that writes the ledger database.

Every write (a posting, a dead letter, an edge's state, a review decision) is a plain function of
a sync connection, run inside one write transaction on this thread. A whole group commit is thus
one hop off the event loop, not one per statement and fetch, and while SQLite or PostgreSQL
works (outside the GIL) the event loop goes on reading and validating the next messages.
"""

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from aggregator.database import create_sync_engine, writing

T = TypeVar("T")
Work = Callable[[sa.Connection], T]


class Writer:
    def __init__(self, database_url: str, timed: Callable[[float], None] | None = None) -> None:
        """`timed` gets the seconds each committed transaction took (on the writer thread)."""
        # One connection is all one thread uses; a server (not a SQLite file) may restart
        # under it, which pre-ping notices before a posting fails on a dead connection.
        server = make_url(database_url).get_backend_name() != "sqlite"
        self.engine = create_sync_engine(
            database_url, pool_size=1, max_overflow=0, pool_pre_ping=server
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._timed = timed
        self.queued = 0  # transactions handed to the thread and not finished

    async def run(self, work: Work[T]) -> T:
        """Run `work` in one write transaction on the writer thread; commit if it returns.

        If the awaiting task is cancelled, the work still finishes (and commits) on the thread.
        """
        loop = asyncio.get_running_loop()
        self.queued += 1
        try:
            return await loop.run_in_executor(self._executor, self._transaction, work)
        finally:
            self.queued -= 1

    def _transaction(self, work: Work[T]) -> T:
        started = time.perf_counter()
        with writing(self.engine) as conn:
            result = work(conn)
        if self._timed is not None:
            self._timed(time.perf_counter() - started)
        return result

    def close(self) -> None:
        """Wait for queued work, then close the connection."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()
