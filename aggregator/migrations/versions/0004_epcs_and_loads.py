"""Transactions keep their load id; every EPC of every movement is stored (epc_moves) with where
each EPC is now (epcs). Both are filled from the transactions already posted.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EPC_STATES = ("in_stock", "departed", "in_review")
ROWS_PER_INSERT_MAX = 5000
_TZ = sa.DateTime(timezone=True)

# What the backfill reads and writes, as this revision knows the tables.
_txns = sa.table(
    "transactions",
    sa.column("id", sa.Uuid),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("body", sa.JSON),
)
_movements = sa.table(
    "movements",
    sa.column("id", sa.BigInteger),
    sa.column("txn_id", sa.Uuid),
    sa.column("item_id", sa.Integer),
    sa.column("from_location_id", sa.Integer),
    sa.column("to_location_id", sa.Integer),
    sa.column("occurred_at", _TZ),
    sa.column("committed_at", _TZ),
)
_locations = sa.table("locations", sa.column("id", sa.Integer), sa.column("virtual", sa.Boolean))


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("load_id", sa.Uuid))
    loaded = sa.text("load_id IS NOT NULL")
    op.create_index(
        "ix_transactions_load_id",
        "transactions",
        ["load_id"],
        sqlite_where=loaded,
        postgresql_where=loaded,
    )
    epc_moves = op.create_table(
        "epc_moves",
        sa.Column("epc", sa.String(124), primary_key=True),
        sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("occurred_at", _TZ, nullable=False),
        sa.Column("committed_at", _TZ, nullable=False),
    )
    epcs = op.create_table(
        "epcs",
        sa.Column("epc", sa.String(124), primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), nullable=False),
        sa.Column("review_txn_id", sa.Uuid, sa.ForeignKey("transactions.id")),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.CheckConstraint(f"state IN {EPC_STATES!r}", name="ck_epcs_state"),
    )
    op.create_index("ix_epcs_review_txn_id", "epcs", ["review_txn_id"])
    conn = op.get_bind()
    _backfill_load_ids(conn)
    _backfill_epcs(conn, epc_moves, epcs)


def downgrade() -> None:
    op.drop_index("ix_epcs_review_txn_id", "epcs")
    op.drop_table("epcs")
    op.drop_table("epc_moves")
    op.drop_index("ix_transactions_load_id", "transactions")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("load_id")


def _backfill_load_ids(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "UPDATE transactions SET load_id = (body ->> 'load_id')::uuid"
                " WHERE body ->> 'load_id' IS NOT NULL"
            )
        )
        return
    # SQLite keeps a Uuid as 32 hex digits; the body has the hyphenated form.
    conn.execute(
        sa.text(
            "UPDATE transactions SET load_id = replace(json_extract(body, '$.load_id'), '-', '')"
            " WHERE json_extract(body, '$.load_id') IS NOT NULL"
        )
    )


def _with_epcs(conn: sa.Connection) -> sa.TextClause:
    if conn.dialect.name == "postgresql":
        return sa.text("json_array_length(transactions.body -> 'epcs') > 0")
    return sa.text("json_array_length(transactions.body, '$.epcs') > 0")


def _epcs_of(body: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(str(e).upper() for e in body.get("epcs", ())))


def _backfill_epcs(conn: sa.Connection, epc_moves: sa.Table, epcs: sa.Table) -> None:
    virtual = {r.id: r.virtual for r in conn.execute(sa.select(_locations))}
    moved = (
        sa.select(_movements, _txns.c.body)
        .join(_txns, _txns.c.id == _movements.c.txn_id)
        .where(_txns.c.kind != "count", _with_epcs(conn))
        .order_by(_movements.c.id)
    )
    now: dict[str, dict[str, object]] = {}
    for rows in _chunks(_move_rows(conn.execute(moved).all(), now)):
        conn.execute(sa.insert(epc_moves), rows)
    pending = sa.select(_txns.c.id, _txns.c.body).where(
        _txns.c.status == "pending", _txns.c.kind != "count", _with_epcs(conn)
    )
    for r in conn.execute(pending).all():
        for epc in _epcs_of(r.body):
            if epc in now:
                now[epc] |= {"review_txn_id": r.id, "state": "in_review"}
    for row in now.values():
        if row["state"] != "in_review":
            row["state"] = "departed" if virtual[row["location_id"]] else "in_stock"
    for rows in _chunks(iter(now.values())):
        conn.execute(sa.insert(epcs), rows)


def _move_rows(
    moved: Iterable[sa.Row[Any]], now: dict[str, dict[str, object]]
) -> Iterator[dict[str, object]]:
    """The epc_moves rows of `moved` (in movement order); `now` ends as each EPC's last place."""
    for m in moved:
        for epc in _epcs_of(m.body):
            yield {
                "epc": epc,
                "movement_id": m.id,
                "txn_id": m.txn_id,
                "item_id": m.item_id,
                "from_location_id": m.from_location_id,
                "to_location_id": m.to_location_id,
                "occurred_at": m.occurred_at,
                "committed_at": m.committed_at,
            }
            now[epc] = _state_row(epc, m.item_id, m.to_location_id, m.txn_id, m.id, m.committed_at)


def _state_row(
    epc: str, item_id: int, location_id: int, txn_id: object, movement_id: int, at: datetime
) -> dict[str, object]:
    return {
        "epc": epc,
        "item_id": item_id,
        "location_id": location_id,
        "state": "",  # decided once every move is known
        "txn_id": txn_id,
        "movement_id": movement_id,
        "review_txn_id": None,
        "updated_at": at,
    }


def _chunks(rows: Iterator[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    chunk: list[dict[str, object]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == ROWS_PER_INSERT_MAX:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
