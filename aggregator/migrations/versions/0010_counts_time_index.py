"""An index on counts.counted_at: a posting first asks whether any count was taken at or after
its earliest event time (aggregator/ledger/late_counts.py); most postings stop there instead of
reading the counts at every balance they touch.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_counts_counted_at", "counts", ["counted_at"])


def downgrade() -> None:
    op.drop_index("ix_counts_counted_at", "counts")
