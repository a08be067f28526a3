"""Reorder points at one location (a pick face, a bin), beside the item's site-wide one:
reorder_points, with the state of the location's low_stock alert (aggregator/ledger/reorder.py).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reorder_points",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), primary_key=True),
        sa.Column("reorder_point", sa.BigInteger, nullable=False),
        sa.Column("max_qty", sa.BigInteger),
        sa.Column("raised_at", sa.DateTime(timezone=True)),
        sa.Column("raised_qty", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("reorder_points")
