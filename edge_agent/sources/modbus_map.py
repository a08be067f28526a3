"""What to read from a weighing transmitter and what its registers mean (pure: no pymodbus).

`plan_reads` turns the channels the lanes use on one unit into the fewest read requests that
cover their weight and status registers: per register type, sorted by wire offset, merged when
the registers in between are few (reading `gap_registers_max` unused registers costs less on
the wire than one more request/response turnaround) and never longer than the profile's
`registers_per_read_max`.

`decode_cell` turns one channel's registers into grams and its STABLE bit, or a CellError that
says why the cell has no usable weight. `lane_samples` sums each lane's cells.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from device_profiles.registers import RegisterValueError, decode
from device_profiles.weighing import RegisterType, WeighingProfile
from edge_agent.readings import WeightSample
from edge_agent.settings import LaneConfig

# Unused registers read to save a request. At 9600 baud one register is ~2 ms on the wire; a
# request and its response frame, the 3.5-character gaps and the device's turnaround cost more.
GAP_REGISTERS_MAX = 8

Cell = tuple[int, int]  # (unit, channel)
RegisterKey = tuple[RegisterType, int]  # (register type, wire offset)


@dataclass(frozen=True, slots=True)
class Span:
    """Consecutive registers of one type, by wire offset."""

    register_type: RegisterType
    address: int
    count: int

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ReadRequest(Span):
    """One FC03 (holding) or FC04 (input) read."""

    @property
    def function(self) -> str:
        return "FC03" if self.register_type == "holding" else "FC04"

    def describe(self, unit: int) -> str:
        return f"unit {unit} {self.function} at {self.address} x{self.count}"


class CellError(ValueError):
    """A channel that answered without a usable weight (error bits, NaN, bad registers)."""


@dataclass(frozen=True, slots=True)
class CellValue:
    grams: float
    stable: bool | None  # None: the model has no STABLE bit


def channel_spans(profile: WeighingProfile, channel: int) -> list[Span]:
    """The registers of one channel: its weight, then its status (if the model has one)."""
    return [
        Span(register_type, profile.wire_address(address, channel), count)
        for _, register_type, address, count in profile.fields()
    ]


def plan_reads(
    profile: WeighingProfile,
    channels: Iterable[int],
    *,
    gap_registers_max: int = GAP_REGISTERS_MAX,
) -> tuple[ReadRequest, ...]:
    """The fewest reads (within the merge rule above) covering `channels`' registers."""
    assert gap_registers_max >= 0
    spans = sorted(
        {span for channel in channels for span in channel_spans(profile, channel)},
        key=lambda s: (s.register_type, s.address),
    )
    requests: list[ReadRequest] = []
    for span in spans:
        last = requests[-1] if requests else None
        if (
            last is not None
            and last.register_type == span.register_type
            and span.address - last.end <= gap_registers_max
            and max(last.end, span.end) - last.address <= profile.registers_per_read_max
        ):
            end = max(last.end, span.end)
            requests[-1] = ReadRequest(last.register_type, last.address, end - last.address)
        else:
            requests.append(ReadRequest(span.register_type, span.address, span.count))
    return tuple(requests)


def register_values(
    answers: Iterable[tuple[ReadRequest, Sequence[int]]],
) -> dict[RegisterKey, int]:
    """The registers the answers hold, by (type, wire offset)."""
    values: dict[RegisterKey, int] = {}
    for request, registers in answers:
        if len(registers) != request.count:
            raise CellError(f"{request.count} registers asked, {len(registers)} answered")
        for offset, value in enumerate(registers):
            values[(request.register_type, request.address + offset)] = value
    return values


def decode_cell(
    profile: WeighingProfile, registers: Mapping[RegisterKey, int], channel: int
) -> CellValue:
    """One channel's weight in grams and STABLE bit; a CellError when it has none."""
    weight_span, *status_span = channel_spans(profile, channel)
    words = _words(registers, weight_span)
    try:
        raw = decode(words, profile.weight.type, profile.weight.byte_order)
    except RegisterValueError as exc:
        raise CellError(f"channel {channel}: {exc}") from None
    if not math.isfinite(raw):
        raise CellError(f"channel {channel}: weight is {raw}")
    stable: bool | None = None
    if profile.status is not None and status_span:
        word = _words(registers, status_span[0])[0]
        _check_status(profile, word, channel)
        status = profile.status
        if status.negative_bit is not None and word >> status.negative_bit & 1:
            raw = -raw
        if status.stable_bit is not None:
            stable = bool(word >> status.stable_bit & 1) == status.stable_when_set
    grams = raw * profile.weight.scale + profile.weight.offset
    if not math.isfinite(grams):
        raise CellError(f"channel {channel}: {raw} x scale {profile.weight.scale} overflows")
    return CellValue(grams=grams, stable=stable)


def _words(registers: Mapping[RegisterKey, int], span: Span) -> list[int]:
    try:
        return [registers[(span.register_type, a)] for a in range(span.address, span.end)]
    except KeyError as exc:
        raise CellError(f"{span.register_type} register {exc.args[0][1]} was not read") from None


def _check_status(profile: WeighingProfile, word: int, channel: int) -> None:
    status = profile.status
    assert status is not None
    set_bits = [bit for bit in status.error_bits if word >> bit & 1]
    if set_bits:
        bits = ", ".join(map(str, set_bits))
        raise CellError(f"channel {channel}: status 0x{word:04x} has error bit(s) {bits} set")
    if status.ok_bit is not None and not word >> status.ok_bit & 1:
        raise CellError(
            f"channel {channel}: status 0x{word:04x}: data-OK bit {status.ok_bit} clear"
        )


@dataclass(frozen=True, slots=True)
class LaneOutcome:
    samples: list[WeightSample]
    left_out: dict[str, str]  # lane id -> why it is not in the batch


def lane_samples(
    device: str,
    lanes: Sequence[LaneConfig],
    cells: Mapping[Cell, CellValue | CellError],
    read_at: Mapping[int, datetime],
) -> LaneOutcome:
    """One WeightSample per lane whose cells all read OK; the others, with the reason.

    A lane's `at` is when the unit of its last-read cell answered; `stable` is True only when
    every cell is stable, None when the model has no STABLE bit.
    """
    samples: list[WeightSample] = []
    left_out: dict[str, str] = {}
    for lane in lanes:
        values: list[CellValue] = []
        for unit, channel in ((c.unit, c.channel) for c in lane.cells):
            value = cells.get((unit, channel))
            if not isinstance(value, CellValue):
                left_out[lane.id] = str(value or f"unit {unit} channel {channel}: not read")
                break
            values.append(value)
        else:
            stables = [v.stable for v in values]
            samples.append(
                WeightSample(
                    device=device,
                    lane=lane.id,
                    grams=math.fsum(v.grams for v in values),
                    at=max(read_at[c.unit] for c in lane.cells),
                    stable=None if None in stables else all(stables),
                )
            )
    return LaneOutcome(samples=samples, left_out=left_out)
