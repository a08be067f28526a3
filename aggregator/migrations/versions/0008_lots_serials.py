"""Lots (an item's lot with its expiry, as first received) and serials (where each serial-
tracked unit is, and every move of it), kept by the posting path (aggregator.ledger.tracking).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("lot", sa.String(20), primary_key=True),
        sa.Column("expiry", sa.Date),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
    )
    op.create_index("ix_lots_expiry", "lots", ["expiry"])
    op.create_table(
        "serial_moves",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "serials",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('in_stock', 'departed')", name="ck_serials_state"),
    )
    op.create_index("ix_serials_serial", "serials", ["serial"])


def downgrade() -> None:
    op.drop_index("ix_serials_serial", "serials")
    op.drop_table("serials")
    op.drop_table("serial_moves")
    op.drop_index("ix_lots_expiry", "lots")
    op.drop_table("lots")
