"""Typed readings that sources produce and recognizers consume.

Time is event time: when the source saw the reading. It is never rewritten downstream.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Scan:
    """One decoded barcode line from a scanner, with the scanner's prefix/suffix removed."""

    device: str
    raw: str
    at: datetime


# Later issues add TagRead (RFID) and WeightSample (Modbus shelf) to this union.
Reading = Scan
