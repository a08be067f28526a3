"""Typed readings that sources produce and recognizers consume.

Time is event time: when the device saw the reading. It is never rewritten downstream.

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


@dataclass(frozen=True, slots=True)
class TagRead:
    """One tag seen by one antenna of an RFID reader, as one report entry says.

    `at` is the reader's LastSeenTimestamp (or the edge's clock when the reader sends none),
    `first_at` its FirstSeenTimestamp; `seen_count` reads of the tag on that antenna are folded
    into the entry; `epc` is the EPC bank in upper-case hex (PC bits excluded).
    """

    device: str
    epc: str
    antenna: int
    rssi_dbm: float
    at: datetime
    first_at: datetime | None = None
    seen_count: int = 1
    phase_deg: float | None = None  # RF phase angle (Impinj extension), 0..360


@dataclass(frozen=True, slots=True)
class WeightSample:
    """One shelf lane's weight in one poll of its weighing transmitters.

    `grams` is the lane's load (the cells of a multi-cell plate summed, sign included), `at` the
    edge's clock when the poll's answer arrived (Modbus carries no timestamps), `stable` the
    transmitters' own STABLE bit (every cell of the lane stable), or None when the model has
    none and the recognizer decides stability from the samples.
    """

    device: str
    lane: str
    grams: float
    at: datetime
    stable: bool | None = None


Reading = Scan | TagRead | WeightSample


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Device data a source could not make into a reading (a scanner line over max_line_bytes).

    Journaled like a reading, then kept in the edge's rejected_readings; never fed to a
    recognizer. `raw` is a capped prefix; `reason` says what was wrong, with the size.
    """

    device: str
    raw: str
    reason: str
    at: datetime


Journaled = Reading | Unreadable  # what a source yields and the journal stores


class ReadingFormatError(ValueError):
    """A journal row that does not decode into a reading (a kind this version does not know)."""


def _us(at: datetime) -> int:
    return (at - EPOCH) // _US


def journal_row(reading: Journaled) -> tuple[str, int, str]:
    """(kind, at_us, payload) of a reading; times must be timezone-aware (exact to the us)."""
    if isinstance(reading, Unreadable):
        assert "\n" not in reading.reason
        return "unreadable", _us(reading.at), f"{reading.reason}\n{reading.raw}"
    if isinstance(reading, Scan):
        return "scan", _us(reading.at), reading.raw
    if isinstance(reading, WeightSample):
        stable = "" if reading.stable is None else str(int(reading.stable))
        return "weight", _us(reading.at), f"{reading.lane} {reading.grams!r} {stable}"
    first = "" if reading.first_at is None else str(_us(reading.first_at))
    phase = "" if reading.phase_deg is None else repr(reading.phase_deg)
    fields = (reading.epc, str(reading.antenna), repr(reading.rssi_dbm), first)
    payload = " ".join((*fields, str(reading.seen_count), phase))
    return "tag", _us(reading.at), payload


def from_journal_row(device: str, kind: str, at_us: int, payload: str) -> Journaled:
    if kind == "scan":
        return Scan(device=device, raw=payload, at=EPOCH + at_us * _US)
    if kind == "unreadable":
        reason, newline, raw = payload.partition("\n")
        if not newline:
            raise ReadingFormatError(f"journal row of device {device!r}: bad unreadable payload")
        return Unreadable(device=device, raw=raw, reason=reason, at=EPOCH + at_us * _US)
    if kind == "weight":
        return _weight(device, at_us, payload)
    if kind != "tag":
        raise ReadingFormatError(f"journal row of device {device!r}: unknown kind {kind!r}")
    parts = payload.split(" ")
    if len(parts) != 6:
        raise ReadingFormatError(f"journal row of device {device!r}: bad tag payload {payload!r}")
    epc, antenna, rssi, first, count, phase = parts
    return TagRead(
        device=device,
        epc=epc,
        antenna=int(antenna),
        rssi_dbm=float(rssi),
        at=EPOCH + at_us * _US,
        first_at=None if not first else EPOCH + int(first) * _US,
        seen_count=int(count),
        phase_deg=None if not phase else float(phase),
    )


def _weight(device: str, at_us: int, payload: str) -> WeightSample:
    parts = payload.split(" ")
    if len(parts) != 3 or parts[2] not in ("", "0", "1"):
        raise ReadingFormatError(
            f"journal row of device {device!r}: bad weight payload {payload!r}"
        )
    lane, grams, stable = parts
    return WeightSample(
        device=device,
        lane=lane,
        grams=float(grams),
        at=EPOCH + at_us * _US,
        stable=None if not stable else stable == "1",
    )
