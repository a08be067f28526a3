"""The audit log: one row per write attempt (who, what, when, from where, outcome).

A successful write records its row in the same database transaction as the change, so
neither exists without the other; refused and failed attempts get a row of their own.
The table is append-only: triggers (migration 0002) refuse UPDATE and DELETE.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa

from aggregator.database import commit_order
from aggregator.schema import audit_log

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who: a key (name, id, role), or someone without one (anonymous, the CLI)."""

    name: str
    key_id: str | None = None
    role: str | None = None


NOBODY = Actor(ANONYMOUS)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    request_id: str
    actor: str
    key_id: str | None
    role: str | None
    action: str  # the route's name (approve, void, reverse, create_key, ...)
    target: str | None  # what it acts on: a transaction id, a movement id, a key id
    method: str
    path: str
    client: str | None  # the client's address, or the user and host of a CLI call
    status: int  # the HTTP status answered (the CLI uses the same codes)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    entry: AuditEntry


def record(conn: sa.Connection, entry: AuditEntry) -> None:
    """Insert one row; over-long text (a fuzzer's path) is cut to the column's size."""
    values = asdict(entry)
    for column in audit_log.c:
        if isinstance(column.type, sa.String) and values.get(column.name) is not None:
            values[column.name] = values[column.name][: column.type.length]
    commit_order(conn)  # readers page the log by id
    conn.execute(sa.insert(audit_log).values(values))
