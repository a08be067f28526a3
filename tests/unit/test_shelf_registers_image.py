"""The shelf server's register image, without Modbus: encoding, status bits, area and checks."""

import math
from typing import Any

import pytest

from device_profiles.registers import decode
from device_profiles.weighing import WeighingProfile
from simulators.shelf.cells import CellReading
from simulators.shelf.registers_image import (
    ILLEGAL_DATA_ADDRESS,
    ILLEGAL_DATA_VALUE,
    RegisterImage,
    register_areas,
    status_word,
    weight_raw,
)


def weighing(**fields: Any) -> WeighingProfile:
    base = {"kind": "weighing-transmitter", "name": "t", "vendor": "T", "model": "T"}
    return WeighingProfile.model_validate(base | {"transports": ["rtu"]} | fields)


SIGN_IN_STATUS = weighing(
    weight={"address": 1, "type": "UINT16"}, status={"address": 0, "negative_bit": 7}
)
UNSIGNED = weighing(weight={"address": 0, "type": "UINT16", "scale": 10.0})
SIGNED = weighing(weight={"address": 0, "type": "INT16", "offset": 100.0})
FLOATS = weighing(weight={"address": 0, "type": "FLOAT64", "byte_order": "DCBA"})
TWO_CHANNELS = weighing(
    channels=2,
    channel_stride=10,
    weight={"register": "input", "address": 0, "type": "INT32", "byte_order": "BADC"},
    status={"address": 5, "stable_bit": 3, "stable_when_set": False, "ok_bit": 0},
    registers_per_read_max=20,
)


class Cells:
    def __init__(self, readings: dict[tuple[int, int], CellReading]) -> None:
        self.readings = readings
        self.asked: list[tuple[int, int]] = []

    def reading(self, unit: int, channel: int, t_s: float) -> CellReading:
        self.asked.append((unit, channel))
        return self.readings[(unit, channel)]

    def cells(self) -> list[tuple[int, int]]:
        return list(self.readings)


@pytest.mark.parametrize(
    ("profile", "grams", "raw", "negative"),
    [
        (SIGN_IN_STATUS, -12.6, 13, True),
        (SIGN_IN_STATUS, -0.4, 0, False),  # rounds to 0: never "-0"
        (SIGN_IN_STATUS, 70_000.0, 65_535, False),  # saturates, does not wrap
        (UNSIGNED, -50.0, 0, False),  # no sign anywhere: underload shows 0
        (UNSIGNED, 1234.0, 123, False),  # 10 g per count
        (SIGNED, 50.0, -50, False),  # offset 100 g
        (SIGNED, -math.inf, -32_768, False),
        (FLOATS, -0.125, -0.125, False),
    ],
)
def test_weight_raw(profile: WeighingProfile, grams: float, raw: float, negative: bool) -> None:
    assert weight_raw(profile, grams) == (raw, negative)


def test_status_bits() -> None:
    s = TWO_CHANNELS
    assert status_word(s, CellReading(1.0, stable=True), False) == 1 << 0  # ok, no motion
    assert status_word(s, CellReading(1.0, stable=False), False) == 1 << 0 | 1 << 3
    laumas = weighing(
        weight={"address": 1, "type": "UINT32"},
        status={"address": 0, "stable_bit": 11, "negative_bit": 7, "error_bits": [1, 0]},
    )
    assert status_word(laumas, CellReading(-1.0, True, error=True), True) == 1 << 11 | 1 << 7 | 2
    assert status_word(UNSIGNED, CellReading(1.0, True, error=True), False) == 0  # no status


def test_areas_per_register_type() -> None:
    assert register_areas(TWO_CHANNELS) == {"input": 12, "holding": 16}
    assert register_areas(SIGN_IN_STATUS) == {"holding": 2}


def test_read_fills_the_window_from_the_channels_in_it() -> None:
    cells = Cells({(5, 1): CellReading(-7.0, True), (5, 2): CellReading(70_000.0, False)})
    image = RegisterImage(TWO_CHANNELS, cells)
    got = image.read(5, "input", 0, 12, 0.0)
    assert got.exception_code is None
    assert decode(got.registers[0:2], "INT32", "BADC") == -7
    assert decode(got.registers[10:12], "INT32", "BADC") == 70_000
    assert got.registers[2:10] == [0] * 8
    cells.asked.clear()
    low_word = image.read(5, "input", 11, 1, 0.0)  # half of channel 2's weight
    assert low_word.registers == [image.read(5, "input", 10, 2, 0.0).registers[1]]
    assert set(cells.asked) == {(5, 2)}  # channel 1 was not computed
    assert image.read(5, "holding", 5, 11, 0.0).registers == [1] + [0] * 9 + [1 | 8]


def test_read_checks_quantity_before_address() -> None:
    image = RegisterImage(TWO_CHANNELS, Cells({(1, 1): CellReading(0.0, True)}))
    assert image.read(1, "input", 100, 21, 0.0).exception_code == ILLEGAL_DATA_VALUE
    assert image.read(1, "input", 0, 0, 0.0).exception_code == ILLEGAL_DATA_VALUE
    assert image.read(1, "input", 11, 2, 0.0).exception_code == ILLEGAL_DATA_ADDRESS
    assert image.read(1, "input", 11, 1, 0.0).exception_code is None
    assert image.read(1, "holding", 0, 1, 0.0).registers == [0]  # unmapped, inside the area
    only_holding = RegisterImage(UNSIGNED, Cells({(1, 1): CellReading(0.0, True)}))
    assert only_holding.read(1, "input", 0, 1, 0.0).exception_code == ILLEGAL_DATA_ADDRESS
