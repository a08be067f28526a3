"""Framing and parameter edge cases: bad bytes raise FrameError, never struct.error."""

import struct

import pytest

from simulators.llrp import frames, tags
from simulators.llrp.driver import SightingDriver
from simulators.llrp.frames import FrameError
from simulators.llrp.params import TV, VENDOR_IMPINJ, P, custom, iter_params, tlv, tv
from simulators.llrp.reader import LLRPReader
from simulators.sightings import Sighting


def test_header_round_trip_and_bad_lengths() -> None:
    frame = frames.encode(61, 0xFFFFFFFF, b"abc")
    assert frames.header(frame) == (1, 61, 13, 0xFFFFFFFF)
    assert frames.decode(frame).body == b"abc"
    with pytest.raises(FrameError):
        frames.header(frame[:9])
    with pytest.raises(FrameError):
        frames.decode(frame[:-1])
    with pytest.raises(FrameError):
        frames.header(struct.pack("!HII", 0x400 | 61, 9, 0))
    with pytest.raises(FrameError):
        frames.split(frame + frame[:12])


def test_parameters_of_every_kind_iterate_back() -> None:
    data = tlv(P.EPCData, b"\x00\x08\xab") + tv(TV.AntennaID, b"\x00\x03")
    data += custom(VENDOR_IMPINJ, 56, b"\x01\x00")
    got = list(iter_params(data))
    assert [(p.type, p.tv, p.vendor, p.subtype) for p in got] == [
        (P.EPCData, False, 0, 0),
        (TV.AntennaID, True, 0, 0),
        (1023, False, VENDOR_IMPINJ, 56),
    ]
    assert got[2].body == b"\x01\x00"


@pytest.mark.parametrize(
    "data",
    [
        b"\x8e\x00",  # TV SpecIndex cut short
        b"\xff\x00",  # TV type 127: unknown, so its length is unknown
        b"\x00\xf1\x00\x02",  # TLV length shorter than its header
        b"\x00\xf1\x00\x09\x00",  # TLV longer than the data
        b"\x03\xff\x00\x08\x00\x00",  # custom parameter without vendor and subtype
        b"\x00",  # a lone byte
    ],
)
def test_malformed_parameters_raise_frame_error(data: bytes) -> None:
    with pytest.raises(FrameError):
        list(iter_params(data))


def test_tag_report_round_trips_and_rejects_a_report_without_epc() -> None:
    tag = tags.TagReport(epc=b"\x12\x34\x50", epc_bits=20, antenna_id=2, peak_rssi_dbm=-70)
    assert tags.decode_report(tags.report_body([tag])) == [tag]
    with pytest.raises(FrameError):
        tags.decode_report(tlv(P.TagReportData, tv(TV.AntennaID, b"\x00\x01")))
    assert tags.phase_units(360.0) == 0
    assert tags.phase_units(90.0) == 1024


async def test_driver_skips_what_came_before_start_s_and_sets_done() -> None:
    reader = LLRPReader()  # never started: every sighting is missed, none lost
    sightings = [Sighting(t / 10, bytes(12), 1, -50.0) for t in range(10)]
    driver = SightingDriver(reader, sightings, speed=50.0, start_s=0.5)
    await driver.run()
    assert driver.done.is_set()
    assert driver.fed == 5
    assert reader.stats.sightings_missed == 5
