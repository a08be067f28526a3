"""SGTIN-96 and SSCC-96 binary encoding (GS1 EPC Tag Data Standard 2.x, section 14).

A small encoder because the physics makes thousands of tags per second; tests check it
against epcpy's decoding and the epcpy vectors in ../shared/testdata/epc.
"""

SGTIN96_HEADER = 0x30
SSCC96_HEADER = 0x31
FILTER_POS_ITEM = 1  # SGTIN: point-of-sale trade item
FILTER_SSCC_FULL_CASE = 2  # SSCC: full case for transport (the filter our pallets carry)
SERIAL_MAX = (1 << 38) - 1  # SGTIN-96 serials are 38-bit integers
# partition -> (company prefix bits, digits); the other field takes the remaining bits
_PARTITIONS = {
    0: (40, 12),
    1: (37, 11),
    2: (34, 10),
    3: (30, 9),
    4: (27, 8),
    5: (24, 7),
    6: (20, 6),
}
_PARTITION_BY_DIGITS = {digits: (p, bits) for p, (bits, digits) in _PARTITIONS.items()}


def sgtin96(gtin14: str, serial: int, company_prefix_digits: int, filter_value: int) -> bytes:
    """The EPC of one trade item: GTIN-14 + serial."""
    assert len(gtin14) == 14, gtin14
    assert gtin14.isdigit(), gtin14
    assert 0 <= serial <= SERIAL_MAX, serial
    partition, cp_bits = _PARTITION_BY_DIGITS[company_prefix_digits]
    company = int(gtin14[1 : 1 + company_prefix_digits])
    item_ref = int(gtin14[0] + gtin14[1 + company_prefix_digits : 13])  # indicator digit first
    value = SGTIN96_HEADER
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << cp_bits) | company
    value = (value << (44 - cp_bits)) | item_ref
    value = (value << 38) | serial
    return value.to_bytes(12, "big")


def sscc96(company_prefix: str, serial_ref: str, filter_value: int) -> bytes:
    """The EPC of a logistic unit; `serial_ref` is the extension digit + serial reference."""
    assert company_prefix.isdigit(), company_prefix
    assert serial_ref.isdigit(), serial_ref
    assert len(company_prefix) + len(serial_ref) == 17, (company_prefix, serial_ref)
    partition, cp_bits = _PARTITION_BY_DIGITS[len(company_prefix)]
    value = SSCC96_HEADER
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << cp_bits) | int(company_prefix)
    value = (value << (58 - cp_bits)) | int(serial_ref)
    value <<= 24  # reserved
    return value.to_bytes(12, "big")


def hex_upper(epc: bytes) -> str:
    return epc.hex().upper()
