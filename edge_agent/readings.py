"""Typed readings that sources produce and recognizers consume.

Time is event time: when the source saw the reading. It is never rewritten downstream.

The readings journal stores a reading as (kind, at in microseconds since the epoch, payload):
`journal_row` and `from_journal_row` are the only places that know a reading's stored form.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Scan:
    """One decoded barcode line from a scanner, with the scanner's prefix/suffix removed."""

    device: str
    raw: str
    at: datetime


# Later issues add TagRead (RFID) and WeightSample (Modbus shelf) to this union, and a kind
# (with its payload encoding) to the two functions below.
Reading = Scan


class ReadingFormatError(ValueError):
    """A journal row that does not decode into a reading (a kind this version does not know)."""


def journal_row(reading: Reading) -> tuple[str, int, str]:
    """(kind, at_us, payload) of a reading; `at` must be timezone-aware (exact to the us)."""
    return "scan", (reading.at - EPOCH) // _US, reading.raw


def from_journal_row(device: str, kind: str, at_us: int, payload: str) -> Reading:
    if kind != "scan":
        raise ReadingFormatError(f"journal row of device {device!r}: unknown kind {kind!r}")
    return Scan(device=device, raw=payload, at=EPOCH + at_us * _US)
