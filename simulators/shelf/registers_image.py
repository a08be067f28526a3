"""What a weighing transmitter's registers hold at a moment: its profile's map filled from cells.

Pure (no Modbus I/O): the server asks `RegisterImage.read` for each read request. A device's
register area of one type runs from wire offset 0 to the last register its map uses (over all
channels); registers inside it that the map does not use read 0, reads past it answer ILLEGAL
DATA ADDRESS, and so does a register type the map does not use. Reads of more registers than
the profile's `registers_per_read_max` answer ILLEGAL DATA VALUE, checked first as the Modbus
spec orders them (quantity, then address).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

from device_profiles.registers import encode
from device_profiles.weighing import RegisterType, WeighingProfile
from simulators.shelf.cells import CellReading, CellSource

ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
UNIT_MIN, UNIT_MAX = 1, 247

# What a channel with no load cell wired shows: nothing, flagged as an error where the model can.
NO_CELL = CellReading(grams=0.0, stable=False, error=True)

_INT_RANGES: dict[str, tuple[int, int]] = {
    "INT16": (-(2**15), 2**15 - 1),
    "UINT16": (0, 2**16 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "UINT32": (0, 2**32 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT64": (0, 2**64 - 1),
}


class RegisterMapError(ValueError):
    """Cells the simulator cannot serve with a profile (no such unit or channel)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    registers: list[int]
    exception_code: int | None = None  # set: answer this Modbus exception instead


def weight_raw(profile: WeighingProfile, grams: float) -> tuple[int | float, bool]:
    """The raw weight register value for `grams` and whether the status shows it negative.

    raw = (grams - offset) / scale; integer types round and saturate at their range (a
    transmitter shows over/underload, it does not wrap); with `status.negative_bit` the raw
    value is the magnitude and the sign goes to the status register.
    """
    field = profile.weight
    raw = (grams - field.offset) / field.scale
    if field.type.startswith("FLOAT"):
        return raw, False
    signed_in_status = profile.status is not None and profile.status.negative_bit is not None
    whole = round(raw) if math.isfinite(raw) else (1 if raw > 0 else -1) * 2**64
    negative = signed_in_status and whole < 0
    if negative:
        whole = -whole
    low, high = _INT_RANGES[field.type]
    return min(max(whole, low), high), negative


def status_word(profile: WeighingProfile, reading: CellReading, negative: bool) -> int:
    status = profile.status
    if status is None:
        return 0
    bits: list[int] = []
    if status.stable_bit is not None and reading.stable == status.stable_when_set:
        bits.append(status.stable_bit)
    if status.negative_bit is not None and negative:
        bits.append(status.negative_bit)
    if reading.error and status.error_bits:
        bits.append(status.error_bits[0])  # the first is the model's load-cell/ADC error
    if status.ok_bit is not None and not reading.error:
        bits.append(status.ok_bit)
    return sum(1 << b for b in bits)


def channel_registers(
    profile: WeighingProfile, channel: int, reading: CellReading
) -> dict[tuple[RegisterType, int], int]:
    """(register type, wire offset) -> value of every register one channel's map fills."""
    raw, negative = weight_raw(profile, reading.grams)
    weight = profile.weight
    at = profile.wire_address(weight.address, channel)
    out = {
        (weight.register_type, at + i): value
        for i, value in enumerate(encode(raw, weight.type, weight.byte_order))
    }
    if profile.status is not None:
        address = profile.wire_address(profile.status.address, channel)
        out[(profile.status.register_type, address)] = status_word(profile, reading, negative)
    return out


@dataclass(frozen=True, slots=True)
class Span:
    """Where one field of one channel sits: `count` registers of `kind` from wire `first`."""

    field: str
    channel: int
    kind: RegisterType
    first: int
    count: int

    def overlaps(self, address: int, count: int) -> bool:
        return self.first < address + count and address < self.first + self.count


def field_spans(profile: WeighingProfile) -> list[Span]:
    """Every field of every channel of the profile's map (the profile keeps them apart)."""
    return [
        Span(name, ch, kind, profile.wire_address(address, ch), count)
        for ch in range(1, profile.channels + 1)
        for name, kind, address, count in profile.fields()
    ]


def register_areas(profile: WeighingProfile) -> dict[RegisterType, int]:
    """Register type -> how many registers (from offset 0) the device has of that type."""
    areas: dict[RegisterType, int] = {}
    for span in field_spans(profile):
        areas[span.kind] = max(areas.get(span.kind, 0), span.first + span.count)
    return areas


def check_cells(profile: WeighingProfile, cells: Iterable[tuple[int, int]]) -> list[int]:
    """The sorted unit ids of `cells`; RegisterMapError if one cannot exist on this bus."""
    units: set[int] = set()
    for unit, channel in cells:
        if not UNIT_MIN <= unit <= UNIT_MAX:
            raise RegisterMapError(f"cell {unit}:{channel}: unit must be {UNIT_MIN}..{UNIT_MAX}")
        if not 1 <= channel <= profile.channels:
            raise RegisterMapError(
                f"cell {unit}:{channel}: profile {profile.name!r} has channels "
                f"1..{profile.channels}"
            )
        units.add(unit)
    if not units:
        raise RegisterMapError("no cells: a shelf server needs at least one unit")
    return sorted(units)


class RegisterImage:
    """The registers of every unit of one bus, computed from `cells` when read."""

    def __init__(self, profile: WeighingProfile, cells: CellSource) -> None:
        self.profile = profile
        self.cells = cells
        wired = cells.cells()
        self.units = check_cells(profile, wired)
        self.areas = register_areas(profile)
        self._wired = set(wired)
        self._spans = field_spans(profile)

    def read(
        self, unit: int, register_type: RegisterType, address: int, count: int, t_s: float
    ) -> ReadResult:
        """What `unit` answers to reading `count` registers at wire `address` at `t_s`."""
        if not 1 <= count <= self.profile.registers_per_read_max:
            return ReadResult([], ILLEGAL_DATA_VALUE)
        area = self.areas.get(register_type, 0)
        if address < 0 or address + count > area:
            return ReadResult([], ILLEGAL_DATA_ADDRESS)
        values = [0] * count
        for channel in self._channels_in(address, count):
            for (kind, at), value in self._channel(unit, channel, t_s).items():
                if kind == register_type and address <= at < address + count:
                    values[at - address] = value
        return ReadResult(values)

    def _channel(self, unit: int, channel: int, t_s: float) -> dict[tuple[RegisterType, int], int]:
        wired = (unit, channel) in self._wired
        reading = self.cells.reading(unit, channel, t_s) if wired else NO_CELL
        return channel_registers(self.profile, channel, reading)

    def _channels_in(self, address: int, count: int) -> set[int]:
        """The channels with a field inside [address, address + count)."""
        return {s.channel for s in self._spans if s.overlaps(address, count)}
