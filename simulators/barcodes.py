"""Barcodes as a person's scanner reads them: command labels, EAN-13 and GS1-128 item labels.

A `Barcode` keeps its AIM symbology identifier apart from its data; whether the identifier
travels on the wire is the scanner profile's business (see `render`).
"""

from dataclasses import dataclass
from datetime import date

GS = "\x1d"
CODE128 = "C0"
GS1_128 = "C1"
EAN13 = "E0"


@dataclass(frozen=True, slots=True)
class Barcode:
    symbology: str
    data: str

    def render(self, aim_ids: bool) -> str:
        return f"]{self.symbology}{self.data}" if aim_ids else self.data


def check_digit(body: str) -> str:
    """GS1 mod-10 check digit of the digits before it (weights 3,1,3,... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def gtin_ok(gtin: str) -> bool:
    return gtin.isdigit() and check_digit(gtin[:-1]) == gtin[-1]


def command(text: str) -> Barcode:
    return Barcode(CODE128, f"SW:{text}")


def ean13(gtin14: str) -> Barcode:
    assert gtin14.startswith("0"), gtin14
    return Barcode(EAN13, gtin14[1:])


def gs1_128(gtin14: str, lot: str | None, expiry: date | None) -> Barcode:
    """AI 01 + 10 (variable length, so a GS ends it when more follows) + 17."""
    data = f"01{gtin14}"
    if lot is not None:
        data += f"10{lot}"
        if expiry is not None:
            data += GS
    if expiry is not None:
        data += f"17{expiry:%y%m%d}"
    return Barcode(GS1_128, data)
