"""Engines for the ledger database: SQLite (embedded default) or PostgreSQL, one code path.

SQLite runs in WAL mode with synchronous=FULL. The aggregator acks a batch only after commit and
the edge then deletes its only other copy, so a commit must survive power loss; NORMAL in WAL mode
can lose the last commits on power loss (the file stays consistent, the acked txns would be gone).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "stockwire_sqlite_begin"
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class DatabaseUrlError(ValueError):
    pass


def async_url(url: str) -> URL:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> URL:
    """The same database through a sync driver (Alembic migrations run with it)."""
    return _with_driver(url, _SYNC_DRIVERS)


def _with_driver(url: str, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise DatabaseUrlError(f"database_url {url!r}: only sqlite and postgresql are supported")
    return parsed.set(drivername=drivers[backend])


def create_engine(url: str) -> AsyncEngine:
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed)
        _tune_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(parsed, pool_size=5, max_overflow=5, pool_pre_ping=True)


def tune_sqlite_sync(engine: sa.Engine) -> None:
    """Same pragmas for the sync engine migrations use."""
    _tune_sqlite(engine)


def _tune_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy own BEGIN/COMMIT (pysqlite's implicit transactions are off).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE): a deferred
    transaction that read first cannot upgrade while another writer commits (it would fail with
    'database is locked' at once instead of waiting busy_timeout)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        async with conn.begin():
            yield conn
