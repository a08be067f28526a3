"""Counts and reorder: compensations that settle a count for a late movement with an event time
before it (count_settlements, aggregator/ledger/late_counts.py), and an index to find the counts
at a balance from a time on; reorder_alerts, the items whose low_stock alert is raised;
count_tasks and count_lines (aggregator/ledger/count_tasks.py).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_counts_balance_time", "counts", ["item_id", "location_id", "lot", "counted_at"]
    )
    op.create_table(
        "count_settlements",
        sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
        sa.Column(
            "count_txn_id", sa.Uuid, sa.ForeignKey("counts.txn_id"), nullable=False, index=True
        ),
    )

    op.create_table(
        "reorder_alerts",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "count_tasks",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")),
        sa.Column("state", sa.String(6), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("closed_by", sa.String(64)),
        sa.CheckConstraint("state IN ('open', 'closed')", name="ck_count_tasks_state"),
    )
    op.create_table(
        "count_lines",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("count_tasks.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("lot", sa.String(20), nullable=False),
        sa.Column("book", sa.BigInteger, nullable=False),
        sa.Column("counted", sa.BigInteger),
        sa.Column("state", sa.String(6), nullable=False),
        sa.Column("counted_by", sa.String(64)),
        sa.Column("counted_at", sa.DateTime(timezone=True)),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id")),
        sa.UniqueConstraint("task_id", "item_id", "location_id", "lot", name="uq_count_lines_key"),
        sa.CheckConstraint("state IN ('open', 'review', 'posted')", name="ck_count_lines_state"),
    )


def downgrade() -> None:
    op.drop_table("count_lines")
    op.drop_table("count_tasks")
    op.drop_table("reorder_alerts")
    op.drop_table("count_settlements")
    op.drop_index("ix_counts_balance_time", "counts")
