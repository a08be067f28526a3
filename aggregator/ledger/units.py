"""A transaction's quantity in its item's base unit, through the pack its GTIN or uom names."""

from aggregator.ledger.catalog import Catalog, Item
from stockwire.txn import StockTransaction

# (item id, uom) -> base units in that pack: the item's packs, read when a uom needs them.
UomPacks = dict[tuple[int, str], int]


def needs_packs(txn: StockTransaction, item: Item, catalog: Catalog) -> bool:
    """Whether converting txn needs the item's packs by uom (neither its GTIN nor its base)."""
    return _own_pack(txn, item, catalog) is None and txn.uom != item.base_uom


def base_qty(txn: StockTransaction, item: Item, catalog: Catalog, by_uom: UomPacks) -> int | str:
    """The quantity in base units, or why it cannot be had (the txn is rejected with it)."""
    pack = _own_pack(txn, item, catalog)
    name = item.sku or item.gtin
    if pack is not None:
        uom, qty = pack
        if txn.uom != uom:
            return (
                f"uom {txn.uom!r} does not match GTIN {txn.gtin}: a pack of {uom}"
                f" ({qty} {item.base_uom}) of item {name}"
            )
        return txn.qty * qty
    if txn.uom == item.base_uom:
        return txn.qty
    per = by_uom.get((item.id, txn.uom))
    if per is None:
        return (
            f"item {name} has no pack in uom {txn.uom!r} (its base unit is {item.base_uom});"
            " add the GTIN and its conversion through the API"
        )
    return txn.qty * per


def _own_pack(txn: StockTransaction, item: Item, catalog: Catalog) -> tuple[str, int] | None:
    if txn.gtin is None:
        return None
    pack = catalog.packs.get(txn.gtin)
    if pack is None or pack.item_id != item.id:
        return None
    return pack.uom, pack.qty
