"""As-of balances (GET /stock?as_of=...) sum an item's movements up to an event time: the index
on movements.item_id becomes one on (item_id, occurred_at). It serves every lookup the old one
served (item_id leads) and costs posting nothing measurable; indexes per side, (item_id,
to_location_id, occurred_at) and (item_id, from_location_id, occurred_at), would narrow an
item-and-location query further but cost ~7 % of ingest throughput (bench/ingest.py, README
"Ledger").

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_movements_item_time", "movements", ["item_id", "occurred_at"])
    op.drop_index("ix_movements_item_id", "movements")


def downgrade() -> None:
    op.create_index("ix_movements_item_id", "movements", ["item_id"])
    op.drop_index("ix_movements_item_time", "movements")
