"""Items (with their GTIN packs) and locations, found set-oriented: one query for each, and
for what is missing one INSERT (unless the site sends unknown items to review)."""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from aggregator.ledger.upsert import insert, insert_for
from aggregator.schema import item_gtins, items, locations, reorder_points
from stockwire.txn import StockTransaction

ItemKey = tuple[str | None, str | None]  # (sku, gtin)


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    sku: str | None
    gtin: str | None
    base_uom: str = "EA"
    tracking: str = "none"  # schema.TRACKING
    shelf_life_days: int | None = None
    reorder_point: int | None = None  # None: no low_stock alerts (aggregator.ledger.reorder)
    located_points: bool = False  # it has reorder points at locations (reorder_points)


@dataclass(frozen=True, slots=True)
class Pack:
    """A GTIN of an item: a scan of it in `uom` is `qty` base units."""

    item_id: int
    uom: str
    qty: int


@dataclass(frozen=True, slots=True)
class Location:
    id: int
    code: str
    virtual: bool
    path: str = ""  # "/1/7/42/": the ids from the root down to this one
    negative_stock: str | None = None  # its own policy; None: as its parent

    def ancestors(self) -> list[int]:
        """The ids above this one, nearest first."""
        return [int(i) for i in reversed(self.path.strip("/").split("/")[:-1])]


@dataclass(frozen=True, slots=True)
class Catalog:
    """The items of a posting's transactions: by key, and the packs their GTINs name."""

    items: dict[ItemKey, Item]
    packs: dict[str, Pack] = field(default_factory=dict)  # by GTIN


_ITEM_COLUMNS = (
    items.c.id,
    items.c.sku,
    items.c.gtin,
    items.c.base_uom,
    items.c.tracking,
    items.c.shelf_life_days,
    items.c.reorder_point,
    sa.exists().where(reorder_points.c.item_id == items.c.id).label("located_points"),
)
_NO_TEXT = sa.cast(sa.null(), sa.String)
_NO_QTY = sa.cast(sa.null(), sa.BigInteger)
# By sku, and by any GTIN of an item (its packs, the base unit's GTIN among them).
_ITEMS_NAMED = sa.union_all(
    sa.select(
        *_ITEM_COLUMNS, _NO_TEXT.label("scanned"), _NO_TEXT.label("uom"), _NO_QTY.label("qty")
    ).where(items.c.sku.in_(sa.bindparam("skus", expanding=True))),
    sa.select(*_ITEM_COLUMNS, item_gtins.c.gtin, item_gtins.c.uom, item_gtins.c.qty)
    .join(item_gtins, item_gtins.c.item_id == items.c.id)
    .where(item_gtins.c.gtin.in_(sa.bindparam("gtins", expanding=True))),
)
# A new item's GTIN becomes its base unit's pack (unless another item has it as a pack).
_NEW_BASE_PACKS = sa.select(
    items.c.gtin, items.c.id, items.c.base_uom, sa.literal(1, sa.BigInteger)
).where(items.c.gtin.in_(sa.bindparam("gtins", expanding=True)))
_PACKS_OF = sa.select(item_gtins.c.item_id, item_gtins.c.uom, item_gtins.c.qty).where(
    item_gtins.c.item_id.in_(sa.bindparam("ids", expanding=True))
)
_LOCATIONS_NAMED = sa.select(
    locations.c.id,
    locations.c.code,
    locations.c.virtual,
    locations.c.path,
    locations.c.negative_stock,
).where(locations.c.code.in_(sa.bindparam("codes", expanding=True)))


def item_key(txn: StockTransaction) -> ItemKey:
    return txn.sku, txn.gtin


def resolve_items(
    conn: sa.Connection, txns: Sequence[StockTransaction], now: datetime, *, create: bool = True
) -> Catalog:
    """Find each txn's item by sku, else by any of its GTINs; with `create`, make the ones not
    found (flagged for review, in the unit first seen); without it they are left out."""
    uoms: dict[ItemKey, str] = {}
    for t in txns:
        uoms.setdefault(item_key(t), t.uom)
    found = _items_named(conn, uoms)
    missing = {k: u for k, u in uoms.items() if found.match(k) is None}
    if missing and create:
        _create_items(conn, missing, now)
        gtins = sorted({g for _, g in missing if g is not None})
        if gtins:
            conn.execute(_base_packs(conn.dialect.name), {"gtins": gtins})
        found = _items_named(conn, uoms)
    resolved = {k: found.match(k) for k in uoms}
    assert not create or all(v is not None for v in resolved.values()), "items created above"
    return Catalog({k: v for k, v in resolved.items() if v is not None}, found.packs)


def packs_of(conn: sa.Connection, item_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """Every pack of these items: (item id, uom) -> base units in it."""
    rows = conn.execute(_PACKS_OF, {"ids": sorted(set(item_ids))})
    return {(r.item_id, r.uom): r.qty for r in rows}


@dataclass(frozen=True, slots=True)
class _Found:
    by_sku: dict[str, Item]
    by_gtin: dict[str, Item]
    packs: dict[str, Pack]

    def match(self, key: ItemKey) -> Item | None:
        sku, gtin = key
        by_sku = self.by_sku.get(sku) if sku is not None else None
        return by_sku or (self.by_gtin.get(gtin) if gtin is not None else None)


def _items_named(conn: sa.Connection, keys: Iterable[ItemKey]) -> _Found:
    skus = [s for s, _ in keys if s is not None]
    gtins = [g for _, g in keys if g is not None]
    by_sku: dict[str, Item] = {}
    by_gtin: dict[str, Item] = {}
    packs: dict[str, Pack] = {}
    params = {"skus": skus, "gtins": gtins}
    for row in conn.execute(_ITEMS_NAMED, params):
        item_id, sku, own, base_uom, tracking, shelf_life, point, located, scanned, uom, qty = row
        item = Item(item_id, sku, own, base_uom, tracking, shelf_life, point, bool(located))
        if scanned is None:
            by_sku[sku] = item
        else:
            by_gtin[scanned] = item
            packs[scanned] = Pack(item_id, uom, qty)
    return _Found(by_sku, by_gtin, packs)


def _create_items(conn: sa.Connection, keys: dict[ItemKey, str], now: datetime) -> None:
    rows: list[dict[str, object]] = []
    skus: set[str] = set()
    gtins: set[str] = set()
    for (sku, gtin), uom in sorted(keys.items(), key=lambda k: (k[0][0] or "", k[0][1] or "")):
        if sku is None:
            if gtin in gtins:
                continue
        elif sku in skus:
            continue
        elif gtin in gtins:
            gtin = None  # another new item claims this gtin; match this one by sku
        skus.update([sku] if sku else [])
        gtins.update([gtin] if gtin else [])
        rows.append({"sku": sku, "gtin": gtin, "flagged": True, "created_at": now, "base_uom": uom})
    conn.execute(insert(conn, items).on_conflict_do_nothing(), rows)


@functools.cache
def _base_packs(dialect: str) -> sa.Executable:
    columns = ["gtin", "item_id", "uom", "qty"]
    return (
        insert_for(dialect, item_gtins)
        .from_select(columns, _NEW_BASE_PACKS)
        .on_conflict_do_nothing()
    )


def resolve_locations(conn: sa.Connection, codes: set[str], now: datetime) -> dict[str, Location]:
    """Physical locations are created on first use (roots of their own tree); virtual ones
    exist from the migration."""
    found = _locations_named(conn, codes)
    missing = sorted(c for c in codes - found.keys() if not c.startswith("@"))
    if missing:
        rows = [{"code": c, "virtual": False, "created_at": now, "path": ""} for c in missing]
        conn.execute(insert(conn, locations).on_conflict_do_nothing(), rows)
        conn.execute(
            sa.update(locations)
            .where(locations.c.code.in_(missing), locations.c.path == "")
            .values(path=root_path(locations.c.id))
        )
        found = _locations_named(conn, codes)
    return found


def root_path(location_id: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    return sa.literal("/") + sa.cast(location_id, sa.String(12)) + sa.literal("/")


def _locations_named(conn: sa.Connection, codes: set[str]) -> dict[str, Location]:
    rows = conn.execute(_LOCATIONS_NAMED, {"codes": list(codes)})
    return {r.code: Location(r.id, r.code, r.virtual, r.path, r.negative_stock) for r in rows}
