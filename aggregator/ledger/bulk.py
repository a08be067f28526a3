"""Bulk writes straight to the driver, for the rows a posting writes per transaction.

SQLAlchemy Core passes every row of an executemany through Python bind processors (UUID to hex,
datetime to text, JSON to text on SQLite) and a parameter dict: most of a posting's cost at
thousands of transactions a second. The per-transaction writes (transactions, rejected,
movements, balance upserts) instead hand the driver tuples already in its own types.
Everything else goes through SQLAlchemy.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from aggregator.database import commit_order


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME text: naive UTC, space separator, microseconds.
    v = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 (the fastest spelling)
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _same(value: UUID) -> UUID:
    return value


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one driver takes UUIDs, timestamps and positional parameters."""

    uuid: Callable[[UUID], object]
    time: Callable[[datetime], object]
    mark: str


_SQLITE = Encoding(uuid=lambda value: value.hex, time=_sqlite_time, mark="?")
_POSTGRES = Encoding(uuid=_same, time=_utc, mark="%s")


def encoding(conn: sa.Connection) -> Encoding:
    return _POSTGRES if conn.dialect.name == "postgresql" else _SQLITE


def insert_rows(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """One executemany of `rows` (values in `columns` order, encoded with `encoding(conn)`)."""
    if rows:
        conn.exec_driver_sql(_insert_sql(conn, table, columns), rows)


def add_rows(
    conn: sa.Connection,
    table: sa.Table,
    keys: Sequence[str],
    amount: str,
    rows: Sequence[tuple[object, ...]],
) -> None:
    """Upsert `rows` (keys..., amount): a new key is inserted, an existing one gets `amount` added.

    SQLite and PostgreSQL spell ON CONFLICT ... DO UPDATE the same.
    """
    if not rows:
        return
    conflict = f" ON CONFLICT ({', '.join(keys)}) DO UPDATE"
    update = f" SET {amount} = {table.name}.{amount} + excluded.{amount}"
    conn.exec_driver_sql(_insert_sql(conn, table, (*keys, amount)) + conflict + update, rows)


def _insert_sql(conn: sa.Connection, table: sa.Table, columns: Sequence[str]) -> str:
    for name in columns:
        assert name in table.c, f"{table.name} has no column {name}"
    marks = ", ".join([encoding(conn).mark] * len(columns))
    # Table and column names come from our schema (checked above), values are parameters.
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


@functools.cache
def _max_id(table: sa.Table) -> sa.Select[Any]:
    return sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int) -> list[int]:
    """`count` new ids for `table`'s integer primary key `id`, in the caller's write transaction.

    SQLite: the writer holds the database's write lock (BEGIN IMMEDIATE), so max(id) + 1.. is
    safe. PostgreSQL: drawn from the column's sequence, safe across concurrent replicas, under
    the commit-order lock (so the ids become visible in order; see commit_order).
    """
    if count <= 0:
        return []
    commit_order(conn)
    if conn.dialect.name == "postgresql":
        query = sa.text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
        )
        return sorted(conn.execute(query, {"table": table.name, "n": count}).scalars())
    top = conn.execute(_max_id(table)).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))
