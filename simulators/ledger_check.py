"""Compare the ledger's balances at physical locations with a scenario's ground truth."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from simulators.ground_truth import Balance, FlaggedMove

# (gtin, or sku when the ledger knows no gtin; location; lot)
Key = tuple[str, str, str | None]


def differences(
    truth: Iterable[Balance],
    stock: Sequence[Mapping[str, Any]],
    gtin_of_sku: Mapping[str, str],
    flagged: Iterable[FlaggedMove] = (),
) -> list[str]:
    """One line per (item, location, lot) whose quantity differs; [] when they agree.

    `stock` is the API's GET /stock: dicts with sku, gtin, location, virtual, lot, qty.
    The ledger is expected to lack the `flagged` moves (they wait in review): their stock is
    still where it came from (nowhere, for a return) and not where it physically went.
    """
    expected: Counter[Key] = Counter({(b.gtin, b.location, b.lot): b.qty for b in truth})
    for move in flagged:
        item = gtin_of_sku.get(move.sku, move.sku)
        expected[(item, move.to_location, move.lot)] -= move.qty
        if move.from_location is not None:
            expected[(item, move.from_location, move.lot)] += move.qty
    names = {b.gtin: b.sku for b in truth} | {g: s for s, g in gtin_of_sku.items()}
    ledger: Counter[Key] = Counter()
    for line in stock:
        if line.get("virtual") or str(line["location"]).startswith("@"):
            continue
        item = line.get("gtin") or gtin_of_sku.get(line.get("sku") or "") or line.get("sku") or "?"
        ledger[(str(item), str(line["location"]), line.get("lot"))] += int(line["qty"])
    out = []
    for key in sorted(set(expected) | set(ledger), key=lambda k: (k[1], k[0], k[2] or "")):
        if ledger[key] != expected[key]:
            item, location, lot = key
            out.append(
                f"{location} {names.get(item, item)} lot {lot or '-'}: "
                f"ledger {ledger[key]}, ground truth {expected[key]}"
            )
    return out
