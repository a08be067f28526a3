"""The register codec against libmodbus' unit-test vectors and round trips of every type."""

import json
from pathlib import Path
from typing import get_args

import pytest

from device_profiles.registers import (
    ByteOrder,
    DataType,
    RegisterValueError,
    decode,
    encode,
    register_count,
)

VECTORS = Path(__file__).parents[2] / ".." / "shared" / "testdata" / "modbus"
ORDERS: tuple[ByteOrder, ...] = get_args(ByteOrder)
TYPES: tuple[DataType, ...] = get_args(DataType)


def _vectors() -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (VECTORS / "libmodbus-unit-test-vectors.json").read_text(encoding="utf-8")
    )
    return data


@pytest.mark.parametrize("order", ORDERS)
def test_libmodbus_float_in_every_word_order(order: ByteOrder) -> None:
    words = _vectors()["float_123456.0_word_orders"]
    assert isinstance(words, dict)
    registers = [int(r, 16) for r in words[order]]
    assert decode(registers, "FLOAT32", order) == 123456.0
    assert encode(123456.0, "FLOAT32", order) == registers


def test_libmodbus_holding_registers_as_uint16() -> None:
    holding = _vectors()["holding_registers"]
    assert isinstance(holding, dict)
    values = [decode([int(v, 16)], "UINT16", "ABCD") for v in holding["values"]]
    assert values == [0x022B, 0x0001, 0x0064]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        ("INT16", -12345),
        ("UINT16", 54321),
        ("INT32", -123456789),
        ("UINT32", 4_000_000_000),
        ("INT64", -(2**62) + 7),
        ("UINT64", 2**63 + 11),
        ("FLOAT32", -1234.5),
        ("FLOAT64", 0.1),
    ],
)
def test_round_trip(data_type: DataType, value: float, order: ByteOrder) -> None:
    registers = encode(value, data_type, order)
    assert len(registers) == register_count(data_type)
    assert decode(registers, data_type, order) == value


def test_orders_place_bytes_as_named() -> None:
    value = 0x11223344
    assert encode(value, "UINT32", "ABCD") == [0x1122, 0x3344]
    assert encode(value, "UINT32", "CDAB") == [0x3344, 0x1122]
    assert encode(value, "UINT32", "BADC") == [0x2211, 0x4433]
    assert encode(value, "UINT32", "DCBA") == [0x4433, 0x2211]
    assert encode(0x1122, "UINT16", "DCBA") == [0x2211]
    assert encode(0x1122, "UINT16", "CDAB") == [0x1122]


@pytest.mark.parametrize(
    ("registers", "data_type"), [([1], "INT32"), ([1, 2, 3], "FLOAT32"), ([70000], "UINT16")]
)
def test_bad_registers_raise(registers: list[int], data_type: DataType) -> None:
    with pytest.raises(RegisterValueError):
        decode(registers, data_type, "ABCD")


def test_out_of_range_value_raises() -> None:
    with pytest.raises(RegisterValueError, match="UINT16"):
        encode(70000, "UINT16", "ABCD")
