"""Storage tables (SQLAlchemy Core). The API has its own models; these never leave storage."""

import sqlalchemy as sa

from aggregator.roles import Role

VIRTUAL_LOCATIONS = ("@supplier", "@customer", "@production", "@loss", "@transit", "@review")

metadata = sa.MetaData()

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(64), unique=True),
    sa.Column("gtin", sa.String(14), unique=True),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("base_uom", sa.String(8), nullable=False, server_default="EA"),
    sa.Column("unit_weight_g", sa.Float),
    sa.Column("tracking", sa.String(6), nullable=False, server_default="none"),  # TRACKING
    sa.Column("shelf_life_days", sa.Integer),
    sa.Column("reorder_point", sa.BigInteger),
    sa.Column("min_qty", sa.BigInteger),
    sa.Column("max_qty", sa.BigInteger),
    sa.Column("abc_class", sa.String(1)),
)
TRACKING = ("none", "lot", "serial")

# Every GTIN of an item, the base unit's included: a scan of `gtin` in `uom` is `qty` base
# units. `items.gtin` names the item's base-unit GTIN (as first seen); it is here too.
item_gtins = sa.Table(
    "item_gtins",
    metadata,
    sa.Column("gtin", sa.String(14), primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False, index=True),
    sa.Column("uom", sa.String(8), nullable=False),
    sa.Column("qty", sa.BigInteger, nullable=False),
    sa.CheckConstraint("qty > 0", name="ck_item_gtins_qty_positive"),
    sqlite_with_rowid=False,  # looked up by GTIN on every posting: one b-tree, not two
)

locations = sa.Table(
    "locations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(65), nullable=False, unique=True),
    sa.Column("virtual", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("locations.id"), index=True),
    sa.Column("kind", sa.String(8)),  # LOCATION_KINDS; None: not said (made on first sight)
    # The ids from the root down to this one, "/1/7/42/": a subtree is a prefix of it.
    sa.Column("path", sa.String(1200), nullable=False, server_default="", index=True),
    sa.Column("negative_stock", sa.String(6)),  # forbid | allow; None: as the parent
)
LOCATION_KINDS = ("site", "zone", "aisle", "bin", "dock", "lane", "virtual")
LOCATION_DEPTH_MAX = 32  # keeps a path within its column

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("edge", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True)),
    sa.Column("review_reason", sa.String(500)),  # why a pending one waits
    sa.Column("load_id", sa.Uuid),  # transactions of one physical load share it
    sa.CheckConstraint("status IN ('posted', 'pending', 'voided')", name="ck_transactions_status"),
)
# Partial: most transactions have no load, and an index entry each would slow every posting.
sa.Index(
    "ix_transactions_load_id",
    transactions.c.load_id,
    sqlite_where=transactions.c.load_id.isnot(None),
    postgresql_where=transactions.c.load_id.isnot(None),
)
# The review queue and the voided: a few rows among many posted ones (GET /transactions).
# Queries must say `status <> 'posted'` for SQLite to use it.
sa.Index(
    "ix_transactions_not_posted",
    transactions.c.status,
    transactions.c.id,
    sqlite_where=transactions.c.status != "posted",
    postgresql_where=transactions.c.status != "posted",
)

movements = sa.Table(
    "movements",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False, index=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("lot", sa.String(20), nullable=False),
    sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("qty", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reverses", sa.BigInteger, sa.ForeignKey("movements.id"), unique=True),
    sa.CheckConstraint("qty > 0", name="ck_movements_qty_positive"),
    sa.CheckConstraint("from_location_id <> to_location_id", name="ck_movements_two_sides"),
)
# As-of balances (aggregator/ledger/as_of.py): an item's movements up to an event time. item_id
# leads, so it also serves every lookup by item alone (migration 0006 says why no more).
sa.Index("ix_movements_item_time", movements.c.item_id, movements.c.occurred_at)

balances = sa.Table(
    "balances",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), primary_key=True),
    sa.Column("lot", sa.String(20), primary_key=True),
    sa.Column("qty", sa.BigInteger, nullable=False),
)

counts = sa.Table(
    "counts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False, unique=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("lot", sa.String(20), nullable=False),
    sa.Column("counted", sa.BigInteger, nullable=False),
    sa.Column("book", sa.BigInteger, nullable=False),
    sa.Column("variance", sa.BigInteger, nullable=False),
    sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
)

# Compensations (aggregator/ledger/late_counts.py): a movement that settles a count for a late
# movement with an event time before the count.
count_settlements = sa.Table(
    "count_settlements",
    metadata,
    sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
    sa.Column("count_txn_id", sa.Uuid, sa.ForeignKey("counts.txn_id"), nullable=False, index=True),
)
sa.Index(
    "ix_counts_balance_time",
    counts.c.item_id,
    counts.c.location_id,
    counts.c.lot,
    counts.c.counted_at,
)
sa.Index("ix_counts_counted_at", counts.c.counted_at)  # any count since a posting's events?

# Items below their reorder point (aggregator/ledger/reorder.py): a row while low_stock is raised.
reorder_alerts = sa.Table(
    "reorder_alerts",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("qty", sa.BigInteger, nullable=False),  # on hand when raised
)

# Reorder points at one location (a pick face, a bin), beside the item's site-wide one
# (aggregator/ledger/reorder.py): raised_at is set while its low_stock alert is raised.
reorder_points = sa.Table(
    "reorder_points",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), primary_key=True),
    sa.Column("reorder_point", sa.BigInteger, nullable=False),
    sa.Column("max_qty", sa.BigInteger),
    sa.Column("raised_at", sa.DateTime(timezone=True)),
    sa.Column("raised_qty", sa.BigInteger),  # on hand there when raised
)

# Cycle-count tasks (aggregator/ledger/count_tasks.py): the book of a location subtree (one item,
# or all) frozen at the start, a line per (item, location, lot) to count.
count_tasks = sa.Table(
    "count_tasks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")),  # None: every item
    sa.Column("state", sa.String(6), nullable=False),  # open | closed
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_by", sa.String(64), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("closed_by", sa.String(64)),
    sa.CheckConstraint("state IN ('open', 'closed')", name="ck_count_tasks_state"),
)
count_lines = sa.Table(
    "count_lines",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("task_id", sa.BigInteger, sa.ForeignKey("count_tasks.id"), nullable=False),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("lot", sa.String(20), nullable=False),
    sa.Column("book", sa.BigInteger, nullable=False),  # as of the task's start
    sa.Column("counted", sa.BigInteger),
    sa.Column("state", sa.String(6), nullable=False),  # open | review | posted
    sa.Column("counted_by", sa.String(64)),
    sa.Column("counted_at", sa.DateTime(timezone=True)),
    sa.Column("approved_by", sa.String(64)),
    sa.Column("approved_at", sa.DateTime(timezone=True)),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id")),  # the count it posted
    sa.UniqueConstraint("task_id", "item_id", "location_id", "lot", name="uq_count_lines_key"),
    sa.CheckConstraint("state IN ('open', 'review', 'posted')", name="ck_count_lines_state"),
)

EPC_STATES = ("in_stock", "departed", "in_review")

# Every EPC of every movement: one row per (EPC, movement). A reversal moves its EPCs back.
epc_moves = sa.Table(
    "epc_moves",
    metadata,
    sa.Column("epc", sa.String(124), primary_key=True),  # hex, upper case
    sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
)

# Where each EPC is now: the destination of its last movement. A row exists once an EPC has
# moved; `review_txn_id` names a pending transaction that holds it (state in_review till then).
epcs = sa.Table(
    "epcs",
    metadata,
    sa.Column("epc", sa.String(124), primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
    sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), nullable=False),
    sa.Column("review_txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"state IN {EPC_STATES!r}", name="ck_epcs_state"),
)

# Each lot of an item as first received: its expiry never changes after (a receipt naming
# another one waits in review). `expiry` None: none given and the item has no shelf life.
lots = sa.Table(
    "lots",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("lot", sa.String(20), primary_key=True),
    sa.Column("expiry", sa.Date),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),  # event time
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
)
sa.Index("ix_lots_expiry", lots.c.expiry)

SERIAL_STATES = ("in_stock", "departed")

# Serial numbers are unique per item (two makers may both ship a "0001"), so a unit is
# (item, serial); otherwise as epc_moves / epcs: every move, and where each unit is now.
serial_moves = sa.Table(
    "serial_moves",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("serial", sa.String(64), primary_key=True),
    sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), primary_key=True),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
    sa.Column("from_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("to_location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
)

serials = sa.Table(
    "serials",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("serial", sa.String(64), primary_key=True),
    sa.Column("location_id", sa.Integer, sa.ForeignKey("locations.id"), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("txn_id", sa.Uuid, sa.ForeignKey("transactions.id"), nullable=False),
    sa.Column("movement_id", sa.BigInteger, sa.ForeignKey("movements.id"), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(f"state IN {SERIAL_STATES!r}", name="ck_serials_state"),
)
sa.Index("ix_serials_serial", serials.c.serial)

rejected_txns = sa.Table(
    "rejected_txns",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("txn_id", sa.Uuid, nullable=False, index=True),
    sa.Column("edge", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("topic", sa.String(1024), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # a capped prefix of it
    sa.Column("payload_bytes", sa.BigInteger, nullable=False),  # the size received
    sa.Column("payload_sha256", sa.String(64), nullable=False),  # of the whole payload
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

edges = sa.Table(
    "edges",
    metadata,
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("edge", sa.String(64), primary_key=True),
    sa.Column("last_seq", sa.BigInteger),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16)),
)

ROLES = tuple(role.value for role in Role)

# Only a SHA-256 of each key's secret is kept (aggregator.keys says why that is enough).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(f"role IN {ROLES!r}", name="ck_api_keys_role"),
)

# Append-only: triggers made by the migration refuse UPDATE and DELETE.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16)),
    sa.Column("role", sa.String(16)),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(128)),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("client", sa.String(128)),
    sa.Column("status", sa.Integer, nullable=False),
)
