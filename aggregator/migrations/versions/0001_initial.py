"""Initial ledger schema, with the virtual locations seeded.

Revision ID: 0001
Revises:
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VIRTUAL_LOCATIONS = ("@supplier", "@customer", "@production", "@loss", "@transit", "@review")
_TZ = sa.DateTime(timezone=True)


def _big_id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), unique=True),
        sa.Column("gtin", sa.String(14), unique=True),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    locations = op.create_table(
        "locations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(65), nullable=False, unique=True),
        sa.Column("virtual", sa.Boolean, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("edge", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("occurred_at", _TZ, nullable=False),
        sa.Column("recorded_at", _TZ, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.Column("committed_at", _TZ),
        sa.CheckConstraint(
            "status IN ('posted', 'pending', 'voided')", name="ck_transactions_status"
        ),
    )
    op.create_table(
        "movements",
        _big_id(),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("lot", sa.String(20), nullable=False),
        sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", _TZ, nullable=False),
        sa.Column("committed_at", _TZ, nullable=False),
        sa.Column("reverses", sa.BigInteger, sa.ForeignKey("movements.id"), unique=True),
        sa.CheckConstraint("qty > 0", name="ck_movements_qty_positive"),
        sa.CheckConstraint("from_location_id <> to_location_id", name="ck_movements_two_sides"),
    )
    op.create_index("ix_movements_txn_id", "movements", ["txn_id"])
    op.create_index("ix_movements_item_id", "movements", ["item_id"])
    op.create_table(
        "balances",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), primary_key=True),
        sa.Column("lot", sa.String(20), primary_key=True),
        sa.Column("qty", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "counts",
        _big_id(),
        sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False, unique=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
        sa.Column("lot", sa.String(20), nullable=False),
        sa.Column("counted", sa.BigInteger, nullable=False),
        sa.Column("book", sa.BigInteger, nullable=False),
        sa.Column("variance", sa.BigInteger, nullable=False),
        sa.Column("counted_at", _TZ, nullable=False),
    )
    op.create_table(
        "rejected_txns",
        _big_id(),
        sa.Column("txn_id", sa.Uuid, nullable=False),
        sa.Column("edge", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
    )
    op.create_index("ix_rejected_txns_txn_id", "rejected_txns", ["txn_id"])
    op.create_table(
        "dead_letters",
        _big_id(),
        sa.Column("topic", sa.String(1024), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
    )
    op.create_table(
        "edges",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("edge", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger),
        sa.Column("last_seen", _TZ, nullable=False),
        sa.Column("state", sa.String(16)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        locations, [{"code": c, "virtual": True, "created_at": now} for c in VIRTUAL_LOCATIONS]
    )


def downgrade() -> None:
    for table in (
        "edges",
        "dead_letters",
        "rejected_txns",
        "counts",
        "balances",
        "movements",
        "transactions",
        "locations",
        "items",
    ):
        op.drop_table(table)
