"""Which two locations a transaction moves stock between (counts are decided by the book)."""

from stockwire.txn import StockTransaction, TxnKind

SUPPLIER = "@supplier"
CUSTOMER = "@customer"
LOSS = "@loss"


def sides(txn: StockTransaction) -> tuple[str, str]:
    """(from, to) for every kind but count."""
    src, dst = txn.from_location, txn.to_location
    match txn.kind:
        case TxnKind.RECEIPT:
            return src or SUPPLIER, _given(dst, txn)
        case TxnKind.SHIPMENT | TxnKind.PICK:
            return _given(src, txn), dst or CUSTOMER
        case TxnKind.RETURN:
            return src or CUSTOMER, _given(dst, txn)
        case TxnKind.PUTAWAY | TxnKind.TRANSFER:
            return _given(src, txn), _given(dst, txn)
        case TxnKind.ADJUSTMENT:
            return (src, LOSS) if src is not None else (LOSS, _given(dst, txn))
        case TxnKind.COUNT:
            raise AssertionError("counts move stock by variance, not by sides()")


def _given(location: str | None, txn: StockTransaction) -> str:
    assert location is not None, f"txn {txn.id}: the model guarantees this side"
    return location


def one_place(txn: StockTransaction) -> str | None:
    """Why txn would move stock from a location to itself once its missing side is filled in
    (a pick from @customer; an adjustment from @loss), or count a virtual location; else None."""
    if txn.kind is TxnKind.COUNT:
        counted = txn.to_location
        if counted is not None and counted.startswith("@"):
            return f"to_location {counted!r}: a count counts a physical location, not a virtual one"
        return None
    src, dst = sides(txn)
    if src != dst:
        return None
    given, missing, way = (
        ("from_location", "to_location", "goes to")
        if txn.from_location is not None
        else ("to_location", "from_location", "comes from")
    )
    return (
        f"{given} {src!r}: a {txn.kind.value} without {missing} {way} {src!r}, so it would move"
        " stock from a location to itself"
    )


def count_sides(location: str, variance: int) -> tuple[str, str]:
    """A positive variance is stock found (from @loss), a negative one stock lost (to @loss)."""
    return (LOSS, location) if variance > 0 else (location, LOSS)
