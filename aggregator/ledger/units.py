"""A transaction's quantity in its item's base unit, through the pack its GTIN or uom names."""

from aggregator.ledger.catalog import Item, Pack
from stockwire.txn import StockTransaction

# (item id, uom) -> base units in that pack: the item's packs, read when a uom needs them.
UomPacks = dict[tuple[int, str], int]


def own_qty(txn: StockTransaction, item: Item, packs: dict[str, Pack]) -> int | str | None:
    """The quantity in base units by the txn's GTIN or the base unit; why not (the txn is
    rejected with it); or None when only the item's pack in txn.uom can say (uom_qty)."""
    gtin = txn.gtin
    if gtin is not None:
        pack = packs.get(gtin)
        if pack is not None and pack.item_id == item.id:
            if txn.uom != pack.uom:
                return (
                    f"uom {txn.uom!r} does not match GTIN {gtin}: a pack of {pack.uom}"
                    f" ({pack.qty} {item.base_uom}) of item {item.sku or item.gtin}"
                )
            return txn.qty * pack.qty
    if txn.uom == item.base_uom:
        return txn.qty
    return None


def uom_qty(txn: StockTransaction, item: Item, by_uom: UomPacks) -> int | str:
    per = by_uom.get((item.id, txn.uom))
    if per is None:
        return (
            f"item {item.sku or item.gtin} has no pack in uom {txn.uom!r} (its base unit is"
            f" {item.base_uom}); add the GTIN and its conversion through the API"
        )
    return txn.qty * per
