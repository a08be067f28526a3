"""What a person with a scanner scans to record one physical event (the command-barcode language).

Noise a real person makes is added where asked and must not change the ledger: a garbage read
(bad check digit, smudged label) and an accidental double read of the same label.
"""

from dataclasses import dataclass

from simulators.barcodes import CODE128, EAN13, Barcode, check_digit, command, ean13, gs1_128
from simulators.ground_truth import Stock
from simulators.scenario import (
    Adjustment,
    Count,
    Delivery,
    Item,
    Line,
    Pick,
    Putaway,
    Return,
    Shipment,
    Transfer,
)

Scanned = Delivery | Putaway | Transfer | Pick | Shipment | Return | Adjustment | Count


@dataclass(frozen=True, slots=True)
class Step:
    """One read. `gap_s` None = one normal scan interval after the previous read."""

    barcode: Barcode
    noise: bool = False
    gap_s: float | None = None


def steps_for(
    event: Scanned, items: dict[str, Item], stock: Stock, double_gap_s: float
) -> list[Step]:
    steps = [Step(command(c)) for c in _commands(event)]
    if isinstance(event, Count):
        steps += _count_labels(event, items, stock)
    else:
        for line in event.lines:
            steps += _line_labels(line, items[line.sku], stock)
    if "double-scan" in event.noise:
        steps = _double_first_label(steps, double_gap_s)
    if "garbage" in event.noise:
        steps = _garbage(_first_gtin(event, items, stock)) + steps
    return steps


def _commands(event: Scanned) -> list[str]:
    match event:
        case Delivery():
            return ["MODE:RECEIVE", f"LOC:{event.to}"]
        case Putaway():
            return ["MODE:PUTAWAY", f"LOC:{event.from_}", f"TO:{event.to}"]
        case Transfer():
            return ["MODE:TRANSFER", f"LOC:{event.from_}", f"TO:{event.to}"]
        case Pick():
            return ["MODE:PICK", f"LOC:{event.from_}"]
        case Shipment():
            return ["MODE:SHIP", f"LOC:{event.from_}"]
        case Return():
            return ["MODE:RETURN", f"LOC:{event.to}"]
        case Adjustment():
            return [f"MODE:ADJUST-{event.direction.upper()}", f"LOC:{event.location}"]
        case Count():
            return ["MODE:COUNT", f"LOC:{event.location}"]
    raise AssertionError(event)


def _line_labels(line: Line, item: Item, stock: Stock) -> list[Step]:
    expiry = line.expiry or stock.expiry(line.sku, line.lot)
    if item.label == "gs1":
        qty = [Step(command(f"QTY:{line.qty}"))] if line.qty > 1 else []
        return [*qty, Step(gs1_128(item.gtin, line.lot, expiry))]
    lot = [Step(command(f"LOT:{line.lot}"))] if line.lot else []
    qty = [Step(command(f"QTY:{line.qty}"))] if line.qty > 1 else []
    return [*lot, *qty, Step(ean13(item.gtin))]


def _count_labels(event: Count, items: dict[str, Item], stock: Stock) -> list[Step]:
    """Every item and lot known at the location, with its counted quantity (0 = all gone)."""
    steps: list[Step] = []
    for held in stock.held_at(event.location):
        item = items[held.sku]
        if item.label == "gs1":
            steps += [
                Step(command(f"QTY:{held.qty}")),
                Step(gs1_128(item.gtin, held.lot, held.expiry)),
            ]
        else:
            lot = [Step(command(f"LOT:{held.lot}"))] if held.lot else []
            steps += [*lot, Step(command(f"QTY:{held.qty}")), Step(ean13(item.gtin))]
    return [*steps, Step(command("END"))]


def _double_first_label(steps: list[Step], gap_s: float) -> list[Step]:
    for n, step in enumerate(steps):
        if step.barcode.symbology != CODE128:
            return [*steps[: n + 1], Step(step.barcode, noise=True, gap_s=gap_s), *steps[n + 1 :]]
    return steps


def _garbage(gtin14: str) -> list[Step]:
    body = gtin14[1:13]
    wrong = str((int(check_digit(body)) + 1) % 10)
    return [
        Step(Barcode(EAN13, body + wrong), noise=True),
        Step(Barcode(CODE128, "#?!%"), noise=True),
    ]


def _first_gtin(event: Scanned, items: dict[str, Item], stock: Stock) -> str:
    if isinstance(event, Count):
        held = stock.held_at(event.location)
        return items[held[0].sku].gtin if held else next(iter(items.values())).gtin
    return items[event.lines[0].sku].gtin
