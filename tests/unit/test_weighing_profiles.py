"""Weighing-transmitter profiles: the shipped ones load with their manuals' facts; bad ones name
the file, the field path and the reason (BAD runs in tests/unit/test_profiles.py)."""

import pytest

from device_profiles import known_profiles, load_profile_of
from device_profiles.weighing import WeighingProfile

SHIPPED = {
    # name: (transports, address_base, weight wire offset, type, order, status wire offset)
    "laumas-w100": (("rtu",), 1, 7, "UINT32", "ABCD", 6),
    "laumas-tlb4": (("rtu", "tcp"), 1, 7, "UINT32", "ABCD", 6),
    "seneca-z-sg": (("rtu",), 1, 63, "FLOAT32", "ABCD", 77),
    "pt113": (("rtu",), 1, 5, "INT32", "ABCD", 2),
    "baykon-mx08": (("rtu",), 1, 5, "INT32", "ABCD", 2),
    "generic-rs485-4ch": (("rtu",), 0, 0, "INT32", "ABCD", None),
}


def test_every_weighing_profile_is_shipped() -> None:
    assert set(SHIPPED) <= set(known_profiles())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_weighing_profiles_load(name: str) -> None:
    profile = load_profile_of(name, WeighingProfile)
    transports, base, weight_wire, data_type, order, status_wire = SHIPPED[name]
    assert (profile.name, profile.kind) == (name, "weighing-transmitter")
    assert (profile.transports, profile.address_base) == (transports, base)
    assert profile.wire_address(profile.weight.address, 1) == weight_wire
    assert (profile.weight.type, profile.weight.byte_order) == (data_type, order)
    status = profile.status
    assert (None if status is None else profile.wire_address(status.address, 1)) == status_wire
    assert profile.weight.scale > 0


def test_the_laumas_family_shares_one_map_with_the_sign_in_the_status() -> None:
    w100 = load_profile_of("laumas-w100", WeighingProfile)
    tlb4 = load_profile_of("laumas-tlb4", WeighingProfile)
    assert w100.weight == tlb4.weight
    assert w100.status == tlb4.status
    assert w100.status is not None
    assert (w100.status.negative_bit, w100.status.stable_bit) == (7, 11)
    assert w100.registers_per_read_max == 32  # the manual's limit per query


def test_pt113_reports_motion_not_stability() -> None:
    for name in ("pt113", "baykon-mx08"):
        status = load_profile_of(name, WeighingProfile).status
        assert status is not None
        assert (status.stable_bit, status.stable_when_set, status.ok_bit) == (2, False, 1)


def test_the_generic_module_has_four_channels_two_registers_apart() -> None:
    generic = load_profile_of("generic-rs485-4ch", WeighingProfile)
    assert (generic.channels, generic.channel_stride, generic.status) == (4, 2, None)
    assert [generic.wire_address(0, ch) for ch in (1, 2, 3, 4)] == [0, 2, 4, 6]


TOP = 'kind = "weighing-transmitter"\nvendor = "acme"\nmodel = "W1"\ntransports = ["rtu"]\n'
WEIGHT = '[weight]\naddress = 8\ntype = "UINT32"\n'
STATUS = "[status]\naddress = 7\n"


def _bad(top: str = "", weight: str = "", status: str | None = None) -> str:
    text = TOP + top + WEIGHT + weight
    return text if status is None else text + STATUS + status


BAD = [
    (
        "weighing-4x-prefix",
        _bad(top="address_base = 1\n").replace("address = 8", "address = 40008"),
        "(root)",
        "looks like a 4x/3x register number; with address_base = 1 write it without the prefix (8)",
    ),
    ("weighing-type", TOP + '[weight]\naddress = 8\ntype = "INT24"\n', "weight.type", "'INT16'"),
    ("weighing-order", _bad(weight='byte_order = "ABDC"\n'), "weight.byte_order", "'ABCD'"),
    ("weighing-register", _bad(weight='register = "coil"\n'), "weight.register", "'holding'"),
    ("weighing-scale-nan", _bad(weight="scale = nan\n"), "weight.scale", "finite number"),
    ("weighing-scale-zero", _bad(weight="scale = 0.0\n"), "weight.scale", "scale 0 makes"),
    (
        "weighing-address",
        _bad(weight="address = -1\n").replace("address = 8\n", ""),
        "weight.address",
        "greater than or equal to 0",
    ),
    ("weighing-transport", TOP.replace('"rtu"', '"usb"') + WEIGHT, "transports.0", "'tcp'"),
    ("weighing-no-stride", _bad(top="channels = 4\n"), "(root)", "channel_stride: must be > 0"),
    (
        "weighing-overlap",
        _bad(top="channels = 2\nchannel_stride = 1\n"),
        "(root)",
        "weight of channel 2 and weight of channel 1 share holding register 9",
    ),
    (
        "weighing-status-overlap",
        _bad(status="stable_bit = 1\n").replace("address = 7\n", "address = 9\n"),
        "(root)",
        "status of channel 1 and weight of channel 1 share holding register 9",
    ),
    (
        "weighing-read-max",
        TOP + 'registers_per_read_max = 2\n[weight]\naddress = 8\ntype = "FLOAT64"\n',
        "(root)",
        "registers_per_read_max: 2 is less than the 4 registers of a FLOAT64 weight",
    ),
    (
        "weighing-bit-twice",
        _bad(status="stable_bit = 7\nnegative_bit = 7\n"),
        "status",
        "two meanings",
    ),
    (
        "weighing-bit-16",
        _bad(status="stable_bit = 16\n"),
        "status.stable_bit",
        "less than or equal to 15",
    ),
    (
        "weighing-signed-sign-bit",
        _bad(weight="").replace("UINT32", "INT32") + STATUS + "negative_bit = 7\n",
        "(root)",
        "negative_bit: only for an unsigned weight",
    ),
    ("weighing-baud", _bad() + "[serial]\nbaud = 9601\n", "serial.baud", "baud 9601 is not one"),
    ("weighing-extra", _bad(weight="unit = 'kg'\n"), "weight.unit", "Extra inputs"),
]
