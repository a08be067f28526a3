"""Dead letters keep a capped prefix with the payload's size and SHA-256; a pending transaction
says why it waits in review.

Revision ID: 0003
Revises: 0002
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("payload_bytes", sa.BigInteger))
        batch.add_column(sa.Column("payload_sha256", sa.String(64)))
    letters = sa.table(
        "dead_letters",
        sa.column("id", sa.BigInteger),
        sa.column("payload", sa.LargeBinary),
        sa.column("payload_bytes", sa.BigInteger),
        sa.column("payload_sha256", sa.String),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(letters.c.id, letters.c.payload)).all():
        conn.execute(
            letters.update()
            .where(letters.c.id == row.id)
            .values(
                payload_bytes=len(row.payload),
                payload_sha256=hashlib.sha256(row.payload).hexdigest(),
            )
        )
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("payload_bytes", existing_type=sa.BigInteger, nullable=False)
        batch.alter_column("payload_sha256", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("review_reason", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("review_reason")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("payload_sha256")
        batch.drop_column("payload_bytes")
