"""Counts and reorder: compensations that settle a count for a late movement with an event time
before it (count_settlements, aggregator/ledger/late_counts.py), and an index to find the counts
at a balance from a time on; reorder_alerts, the items whose low_stock alert is raised.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    op.drop_table("reorder_alerts")
    op.drop_table("count_settlements")
    op.drop_index("ix_counts_balance_time", "counts")
