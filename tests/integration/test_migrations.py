"""The shipped Alembic head must build exactly the schema the code declares."""

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aggregator.database import create_sync_engine
from aggregator.migrate import alembic_config, upgrade
from aggregator.schema import VIRTUAL_LOCATIONS, locations, metadata
from tests.integration import aggregator_support as support

# fixtures shared by the aggregator's tests
db_url = support.db_url


def _sync_engine(url: str) -> sa.Engine:
    return create_sync_engine(url, poolclass=sa.NullPool)


async def test_head_schema_matches_the_metadata(db_url: str) -> None:
    await upgrade(db_url)
    await upgrade(db_url)  # a second start finds nothing to do
    engine = _sync_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            virtual = conn.execute(
                sa.select(locations.c.code).where(locations.c.virtual == sa.true())
            ).scalars()
            assert sorted(virtual) == sorted(VIRTUAL_LOCATIONS)
    finally:
        engine.dispose()
    assert diff == []


async def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    await upgrade(db_url)
    engine = _sync_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert "movements" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    await upgrade(db_url)
    engine = _sync_engine(db_url)
    try:
        with engine.connect() as conn:
            assert "movements" in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
