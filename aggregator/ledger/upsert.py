"""INSERT ... ON CONFLICT for the dialect at hand (SQLite and PostgreSQL spell it the same)."""

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    return insert_for(conn.dialect.name, table)


@functools.cache
def insert_for(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
