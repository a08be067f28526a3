"""Master data: items gain a base unit, tracking mode, shelf life and reorder figures; every
GTIN of an item is a pack (`item_gtins`: the GTIN, its unit, how many base units it holds);
locations form a tree (parent, kind, a materialized path of ids) and may carry a
negative-stock policy (inherited down the tree). Existing items keep their GTIN as a
one-base-unit pack; existing locations become roots.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_items = sa.table(
    "items", sa.column("id", sa.Integer), sa.column("gtin", sa.String), sa.column("base_uom")
)
_item_gtins = sa.table(
    "item_gtins",
    sa.column("gtin", sa.String),
    sa.column("item_id", sa.Integer),
    sa.column("uom", sa.String),
    sa.column("qty", sa.BigInteger),
)


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: SQLite would rebuild tables that movements refer to.
    for column in (
        sa.Column("base_uom", sa.String(8), nullable=False, server_default="EA"),
        sa.Column("unit_weight_g", sa.Float),
        sa.Column("tracking", sa.String(6), nullable=False, server_default="none"),
        sa.Column("shelf_life_days", sa.Integer),
        sa.Column("reorder_point", sa.BigInteger),
        sa.Column("min_qty", sa.BigInteger),
        sa.Column("max_qty", sa.BigInteger),
        sa.Column("abc_class", sa.String(1)),
    ):
        op.add_column("items", column)
    op.create_table(
        "item_gtins",
        sa.Column("gtin", sa.String(14), primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False, index=True),
        sa.Column("uom", sa.String(8), nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.CheckConstraint("qty > 0", name="ck_item_gtins_qty_positive"),
        sqlite_with_rowid=False,
    )
    old = sa.select(_items.c.gtin, _items.c.id, _items.c.base_uom, sa.literal(1))
    columns = ["gtin", "item_id", "uom", "qty"]
    op.execute(sa.insert(_item_gtins).from_select(columns, old.where(_items.c.gtin.isnot(None))))
    if op.get_bind().dialect.name == "sqlite":  # alembic would ALTER the constraint apart
        op.execute("ALTER TABLE locations ADD COLUMN parent_id INTEGER REFERENCES locations (id)")
    else:
        op.add_column(
            "locations", sa.Column("parent_id", sa.Integer, sa.ForeignKey("locations.id"))
        )
    for column in (
        sa.Column("kind", sa.String(8)),
        sa.Column("path", sa.String(1200), nullable=False, server_default=""),
        sa.Column("negative_stock", sa.String(6)),
    ):
        op.add_column("locations", column)
    op.execute(
        "UPDATE locations SET path = '/' || CAST(id AS VARCHAR(12)) || '/',"
        " kind = CASE WHEN virtual THEN 'virtual' END"
    )
    op.create_index("ix_locations_parent_id", "locations", ["parent_id"])
    op.create_index("ix_locations_path", "locations", ["path"])


def downgrade() -> None:
    op.drop_index("ix_locations_path", "locations")
    op.drop_index("ix_locations_parent_id", "locations")
    with op.batch_alter_table("locations") as batch:
        for name in ("negative_stock", "path", "kind", "parent_id"):
            batch.drop_column(name)
    op.drop_table("item_gtins")
    with op.batch_alter_table("items") as batch:
        for name in (
            "abc_class",
            "max_qty",
            "min_qty",
            "reorder_point",
            "shelf_life_days",
            "tracking",
            "unit_weight_g",
            "base_uom",
        ):
            batch.drop_column(name)
