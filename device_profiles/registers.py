"""Numbers in Modbus registers: data types and byte orders as Modbus users know them (Telegraf).

A register is 16 bits sent high byte first. Wider values span consecutive registers; devices
disagree on the order, named by where the bytes A (most significant) .. D of a 32-bit value go:

    ABCD  big-endian: high word first, high byte first in each word (Modbus' own order)
    CDAB  word swap: low word first ("little-endian word order", many PLCs)
    BADC  byte swap within each word, high word first
    DCBA  little-endian throughout

16-bit types use the first pair (ABCD and CDAB = AB, BADC and DCBA = BA); 64-bit types extend
the same rule over four words. pymodbus' convert_from_registers knows word order only, and
device_profiles must not import pymodbus (the simulator and the edge both use this), so this is
plain `struct`.
"""

import struct
from collections.abc import Sequence
from typing import Literal

DataType = Literal["INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "FLOAT32", "FLOAT64"]
ByteOrder = Literal["ABCD", "DCBA", "BADC", "CDAB"]

_FORMATS: dict[str, str] = {
    "INT16": ">h",
    "UINT16": ">H",
    "INT32": ">i",
    "UINT32": ">I",
    "INT64": ">q",
    "UINT64": ">Q",
    "FLOAT32": ">f",
    "FLOAT64": ">d",
}


class RegisterValueError(ValueError):
    """Registers that do not hold a value of the type (wrong count, out of range)."""


def register_count(data_type: DataType) -> int:
    return struct.calcsize(_FORMATS[data_type]) // 2


def decode(registers: Sequence[int], data_type: DataType, byte_order: ByteOrder) -> int | float:
    """The value the registers hold (ints for integer types, floats for FLOAT32/64)."""
    count = register_count(data_type)
    if len(registers) != count:
        raise RegisterValueError(f"{data_type} takes {count} register(s), got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise RegisterValueError(f"register value out of 0..65535 in {list(registers)}")
    raw = b"".join(r.to_bytes(2, "big") for r in _arrange(list(registers), byte_order))
    value: int | float = struct.unpack(_FORMATS[data_type], raw)[0]
    return value


def encode(value: float, data_type: DataType, byte_order: ByteOrder) -> list[int]:
    """The registers a device of that byte order sends for `value` (ints are rounded)."""
    fmt = _FORMATS[data_type]
    number: int | float = value if data_type.startswith("FLOAT") else round(value)
    try:
        raw = struct.pack(fmt, number)
    except struct.error as exc:
        raise RegisterValueError(f"{value!r} does not fit {data_type}: {exc}") from None
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return _arrange(words, byte_order)


def _arrange(words: list[int], byte_order: ByteOrder) -> list[int]:
    """Big-endian words <-> the device's registers (each order is its own inverse)."""
    if byte_order in ("BADC", "DCBA"):
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if byte_order in ("CDAB", "DCBA"):
        words = words[::-1]
    return words
