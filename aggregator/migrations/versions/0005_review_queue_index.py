"""The review queue (GET /transactions?status=pending) is found by an index, not a scan of every
posted transaction: partial, over the few that are not posted, so posting pays nothing for it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    not_posted = sa.text("status <> 'posted'")
    op.create_index(
        "ix_transactions_not_posted",
        "transactions",
        ["status", "id"],
        sqlite_where=not_posted,
        postgresql_where=not_posted,
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_not_posted", "transactions")
