"""Run the shipped Alembic migrations programmatically (sync driver, in a worker thread)."""

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from aggregator.database import create_sync_engine, writing

MIGRATIONS = Path(__file__).parent / "migrations"
# The key of the transaction-scoped PostgreSQL advisory lock one upgrade holds at a time.
MIGRATION_LOCK = 0x5357_4D49_4752_4154  # "SWMIGRAT"
# SQLite: how long an upgrade waits for another process's upgrade of the same file (a new
# database's whole chain, on a slow or busy machine) before it gives up.
MIGRATION_WAIT_MS = 300_000


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade_sync(database_url: str, revision: str = "head") -> None:
    """Upgrade one at a time: two aggregators starting at once on a new database would both
    create its tables (and one fail). SQLite: the write lock, taken at BEGIN (IMMEDIATE);
    PostgreSQL: an advisory lock. The second then finds the first one's revision."""
    engine = create_sync_engine(
        database_url, busy_timeout_ms=MIGRATION_WAIT_MS, poolclass=sa.NullPool
    )
    try:
        with writing(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade_sync, database_url, revision)
