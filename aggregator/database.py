"""Engines for the ledger database: SQLite (embedded default) or PostgreSQL, one code path.

Reads (the API) go through an async engine (aiosqlite / asyncpg). Writes go through a sync
engine (pysqlite / psycopg) on the writer thread (aggregator.writer): a whole posting is then
one hop off the event loop instead of dozens.

SQLite runs in WAL mode with synchronous=FULL. The aggregator acks a batch only after commit and
the edge then deletes its only other copy, so a commit must survive power loss; NORMAL in WAL mode
can lose the last commits on power loss (the file stays consistent, the acked txns would be gone).
"""

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from stockwire.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000
WAL_RETRY_S = 0.05
# The key of the transaction-scoped PostgreSQL advisory lock that orders commits (commit_order).
COMMIT_ORDER_LOCK = 0x5357_434F_4D4D_4954  # "SWCOMMIT"
_PG_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_BEGIN_OPTION = "stockwire_sqlite_begin"
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class DatabaseUrlError(ConfigError, ValueError):
    """A database_url the aggregator cannot use: a configuration error (exit 2)."""


def supported_url(url: str) -> str:
    """`url` if it names a backend we support; a ValueError naming the backends otherwise."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise ValueError(
            f"{url!r} is not a database URL (sqlite+aiosqlite:///path/ledger.db, postgresql://...)"
        ) from None
    if backend not in _SYNC_DRIVERS:
        raise ValueError(f"{backend!r} is not supported: only sqlite and postgresql are")
    return url


def async_url(url: str) -> URL:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> URL:
    """The same database through a sync driver (the writer thread and Alembic use it)."""
    return _with_driver(url, _SYNC_DRIVERS)


def _with_driver(url: str, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise DatabaseUrlError(f"database_url {url!r}: only sqlite and postgresql are supported")
    return parsed.set(drivername=drivers[backend])


def make_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite database file (SQLite creates the file, not its folder)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    folder = Path(parsed.database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatabaseUrlError(f"database_url {url!r}: cannot create {folder}: {e}") from None


def create_engine(url: str) -> AsyncEngine:
    """The async engine the API reads with."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed)
        tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(parsed, pool_size=5, max_overflow=5, pool_pre_ping=True)


def create_sync_engine(
    url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **options: Any
) -> sa.Engine:
    """The sync engine the writer thread (and migrations, with NullPool) use."""
    engine = sa.create_engine(sync_url(url), **options)
    if engine.dialect.name == "sqlite":
        tune_sqlite(engine, busy_timeout_ms)
    return engine


def _wal(cursor: Any, wait_s: float) -> None:
    """Turn on WAL. A new file switching to it needs a lock that another process (migrating
    the same new database) may hold, and SQLite answers "database is locked" at once there,
    without its busy handler: retry until `wait_s` is over."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)
        else:
            return


def tune_sqlite(engine: sa.Engine, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy own BEGIN/COMMIT (pysqlite's implicit transactions are off).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        _wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred
    transaction that read first cannot upgrade while another writer commits (it would fail with
    'database is locked' at once instead of waiting busy_timeout)."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


def commit_order(conn: sa.Connection) -> None:
    """Call before drawing ids that readers page by (?after=): movements, rejected, dead
    letters, audit. On PostgreSQL a sequence hands out ids in call order, not commit order: a
    posting that drew 11 may commit after one that drew 12 is visible, and a reader already
    at after=12 skips 11 for good. Holding one lock from the first such id to commit makes
    ids visible in id order. Take it after the rows the transaction locks that another
    writer may lock too (items, balances, EPCs held): a writer waiting for it then holds
    nothing the lock's holder needs. SQLite: the write lock (BEGIN IMMEDIATE) already orders
    every commit."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK})")


def lost_a_race(error: DBAPIError) -> bool:
    """A write transaction that may succeed if simply run again: PostgreSQL's serialization
    failure or deadlock victim, SQLite busy past busy_timeout."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in _PG_RETRYABLE or getattr(error.orig, "sqlite_errorname", "") == "SQLITE_BUSY"
