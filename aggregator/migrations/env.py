"""Alembic environment: aggregator.migrate passes an open sync connection in `attributes`."""

import sqlalchemy as sa
from alembic import context

from aggregator.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):
    raise TypeError("run migrations through aggregator.migrate (it passes a connection)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
