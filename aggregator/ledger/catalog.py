"""Items and locations are created on first sight, set-oriented: one SELECT, one INSERT."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from aggregator.ledger.upsert import insert
from aggregator.schema import items, locations
from stockwire.txn import StockTransaction

ItemKey = tuple[str | None, str | None]  # (sku, gtin)


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    sku: str | None
    gtin: str | None


@dataclass(frozen=True, slots=True)
class Location:
    id: int
    code: str
    virtual: bool


_ITEMS_NAMED = sa.select(items.c.id, items.c.sku, items.c.gtin).where(
    sa.or_(
        items.c.sku.in_(sa.bindparam("skus", expanding=True)),
        items.c.gtin.in_(sa.bindparam("gtins", expanding=True)),
    )
)
_LOCATIONS_NAMED = sa.select(locations.c.id, locations.c.code, locations.c.virtual).where(
    locations.c.code.in_(sa.bindparam("codes", expanding=True))
)


def item_key(txn: StockTransaction) -> ItemKey:
    return txn.sku, txn.gtin


def resolve_items(
    conn: sa.Connection, txns: Sequence[StockTransaction], now: datetime
) -> dict[ItemKey, Item]:
    """Find each txn's item by sku, else by gtin; create the ones not found (flagged for review)."""
    keys = {item_key(t) for t in txns}
    found = _items_named(conn, keys)
    missing = [k for k in keys if found.match(k) is None]
    if missing:
        _create_items(conn, missing, now)
        found = _items_named(conn, keys)
    resolved = {k: found.match(k) for k in keys}
    assert all(v is not None for v in resolved.values()), "items created above"
    return {k: v for k, v in resolved.items() if v is not None}


@dataclass(frozen=True, slots=True)
class _Found:
    by_sku: dict[str, Item]
    by_gtin: dict[str, Item]

    def match(self, key: ItemKey) -> Item | None:
        sku, gtin = key
        by_sku = self.by_sku.get(sku) if sku is not None else None
        return by_sku or (self.by_gtin.get(gtin) if gtin is not None else None)


def _items_named(conn: sa.Connection, keys: Iterable[ItemKey]) -> _Found:
    skus = [s for s, _ in keys if s is not None]
    gtins = [g for _, g in keys if g is not None]
    found = [Item(*r) for r in conn.execute(_ITEMS_NAMED, {"skus": skus, "gtins": gtins})]
    return _Found(
        {i.sku: i for i in found if i.sku is not None},
        {i.gtin: i for i in found if i.gtin is not None},
    )


def _create_items(conn: sa.Connection, keys: list[ItemKey], now: datetime) -> None:
    rows: list[dict[str, object]] = []
    skus: set[str] = set()
    gtins: set[str] = set()
    for sku, gtin in sorted(keys, key=lambda k: (k[0] or "", k[1] or "")):
        if sku is None:
            if gtin in gtins:
                continue
        elif sku in skus:
            continue
        elif gtin in gtins:
            gtin = None  # another new item claims this gtin; match this one by sku
        skus.update([sku] if sku else [])
        gtins.update([gtin] if gtin else [])
        rows.append({"sku": sku, "gtin": gtin, "flagged": True, "created_at": now})
    conn.execute(insert(conn, items).on_conflict_do_nothing(), rows)


def resolve_locations(conn: sa.Connection, codes: set[str], now: datetime) -> dict[str, Location]:
    """Physical locations are created on first use; virtual ones exist from the migration."""
    found = _locations_named(conn, codes)
    missing = sorted(c for c in codes - found.keys() if not c.startswith("@"))
    if missing:
        rows = [{"code": c, "virtual": False, "created_at": now} for c in missing]
        conn.execute(insert(conn, locations).on_conflict_do_nothing(), rows)
        found = _locations_named(conn, codes)
    return found


def _locations_named(conn: sa.Connection, codes: set[str]) -> dict[str, Location]:
    rows = conn.execute(_LOCATIONS_NAMED, {"codes": list(codes)})
    return {r.code: Location(r.id, r.code, r.virtual) for r in rows}
