"""The sllurp adapter without a network: real frames through sllurp's decoder and our framing.

Real LLRP frames (LTK golden streams, EdgeX captures of real readers) go through the same
_ReaderClient.raw_data_received a connection uses, fed from a thread as sllurp's would.
"""

import asyncio
import base64
import json
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sllurp.llrp import LLRPMessage, LLRPReaderState

from device_profiles import RfidReaderProfile, load_profile_of
from edge_agent.readings import TagRead
from edge_agent.sources.rfid_llrp import (
    RfidLlrpSource,
    _Bridge,
    _Hooks,
    _ReaderClient,
    power_index,
    tag_reads,
)

HEADER = struct.Struct("!HII")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
RO_ACCESS_REPORT = 61


def frames(stream: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(stream):
        _, length, _ = HEADER.unpack_from(stream, pos)
        yield stream[pos : pos + length]
        pos += length


def message(kind: int, body: bytes, msg_id: int = 1) -> bytes:
    return HEADER.pack((1 << 10) | kind, HEADER.size + len(body), msg_id) + body


def tag_entry(epc: bytes, antenna: int, rssi: int, first_us: int, last_us: int, seen: int) -> bytes:
    tv = (
        struct.pack("!B12s", 0x80 | 13, epc)
        + struct.pack("!BH", 0x80 | 1, antenna)
        + struct.pack("!Bb", 0x80 | 6, rssi)
        + struct.pack("!BQ", 0x80 | 2, first_us)
        + struct.pack("!BQ", 0x80 | 4, last_us)
        + struct.pack("!BH", 0x80 | 8, seen)
    )
    return struct.pack("!HH", 240, 4 + len(tv)) + tv


def phase_entry(epc: bytes, phase: int) -> bytes:
    custom = struct.pack("!HHIIH", 1023, 14, 25882, 56, phase)
    tv = struct.pack("!B12s", 0x80 | 13, epc) + struct.pack("!BH", 0x80 | 1, 2)
    return struct.pack("!HH", 240, 4 + len(tv) + len(custom)) + tv + custom


def r420() -> RfidReaderProfile:
    return load_profile_of("impinj-speedway-r420", RfidReaderProfile)


def test_ltk_reports_become_tag_reads(testdata: Path) -> None:
    stream = (testdata / "llrp" / "ltk-dx101" / "dx101_b.bin").read_bytes()
    reads: list[TagRead] = []
    reports = 0
    for frame in frames(stream):
        reports += 1
        entries = LLRPMessage(msgbytes=frame).msgdict["RO_ACCESS_REPORT"]["TagReportData"]
        got, skipped = tag_reads("dock", entries, NOW)
        assert skipped == 0
        reads += got
    assert (reports, len(reads)) == (24, 132)
    assert all(r.epc == r.epc.upper() and r.epc for r in reads)
    second = reads[1]  # dx101_b.xml: EPCData a1, antenna 25838, seen 8610
    assert (second.epc, second.antenna, second.seen_count) == ("A1", 25838, 8610)
    assert second.at == second.first_at == datetime.fromtimestamp(1191333298, UTC)
    assert reads[0].at == NOW  # no timestamps in the entry: the edge's clock


def test_edgex_captures_decode_to_their_json(testdata: Path) -> None:
    folder = testdata / "llrp" / "edgex-captures" / "roAccessReports"
    checked = 0
    for path in sorted(folder.glob("*.bytes")):
        frame = message(RO_ACCESS_REPORT, path.read_bytes())
        entries = LLRPMessage(msgbytes=frame).msgdict["RO_ACCESS_REPORT"].get("TagReportData")
        expected = json.loads(path.with_suffix(".json").read_text())["TagReportData"] or []
        reads, _ = tag_reads("dock", entries or [], NOW)
        assert len(reads) == len(expected), path.name
        for read, want in zip(reads, expected, strict=True):
            epc = (want["EPC96"] or {}).get("EPC") or want["EPCData"]["EPC"]
            assert read.epc == base64.b64decode(epc).hex().upper()
            if want["AntennaID"] is not None:
                assert read.antenna == want["AntennaID"]
            if want["PeakRSSI"] is not None:
                assert read.rssi_dbm == want["PeakRSSI"]
            if want["FirstSeenUTC"] is not None:
                assert read.first_at == datetime.fromtimestamp(want["FirstSeenUTC"] / 1e6, UTC)
            checked += 1
    assert checked > 0


def test_every_field_and_the_impinj_phase() -> None:
    epc = bytes.fromhex("3034257bf7194e4000001a85")
    body = tag_entry(epc, 3, -52, 1_790_000_000_000_001, 1_790_000_000_500_000, 7)
    body += phase_entry(epc, 1024)
    msg = LLRPMessage(msgbytes=message(RO_ACCESS_REPORT, body))
    reads, _ = tag_reads("dock", msg.msgdict["RO_ACCESS_REPORT"]["TagReportData"], NOW)
    full, phased = reads
    assert full == TagRead(
        device="dock",
        epc="3034257BF7194E4000001A85",
        antenna=3,
        rssi_dbm=-52.0,
        at=EPOCH + timedelta(microseconds=1_790_000_000_500_000),
        first_at=EPOCH + timedelta(microseconds=1_790_000_000_000_001),
        seen_count=7,
        phase_deg=None,
    )
    assert (phased.antenna, phased.phase_deg, phased.at) == (2, 90.0, NOW)


def test_power_index_uses_the_readers_table(testdata: Path) -> None:
    configs = testdata / "llrp" / "edgex-reader-configs"

    def table(name: str) -> list[dict[str, int]]:
        caps = json.loads((configs / name).read_text())["ReaderCapabilities"]
        levels: list[dict[str, int]] = caps["RegulatoryCapabilities"]["UHFBandCapabilities"][
            "TransmitPowerLevels"
        ]
        return levels

    speedway, zebra = table("SpeedwayR-12-34-FF.json"), table("fx96004a4a4a.json")
    assert power_index(speedway, 30.0) == (81, 30.0)
    assert power_index(speedway, 27.5) == (71, 27.5)
    assert power_index(speedway, 27.6) == (71, 27.5)
    assert power_index(zebra, 30.0) == (200, 30.0)
    assert power_index(zebra, 21.3) == (113, 21.3)
    assert power_index(zebra, 10.0) == (1, 10.1)  # index 0 means "maximum" to sllurp
    assert power_index(zebra, 99.0) == (200, 30.0)


class Fed:
    """A _ReaderClient (not connected) fed bytes from a thread, as sllurp's main loop does."""

    def __init__(self, source: RfidLlrpSource, queued_max: int = 4) -> None:
        self.bridge = _Bridge(asyncio.get_running_loop(), queued_max)
        self.client = _ReaderClient(
            "127.0.0.1",
            1,
            source.profile,
            _Hooks(source, self.bridge),
            timeout_s=1,
            frame_bytes_max=source.frame_bytes_max,
        )
        self.sent: list[bytes] = []
        self.client.llrp.transport_tx_write = self.sent.append
        self.client.llrp.state = LLRPReaderState.STATE_INVENTORYING  # past setup
        self.errors: list[BaseException] = []

    def feed(self, stream: bytes, chunk: int) -> threading.Thread:
        def run() -> None:
            try:
                for i in range(0, len(stream), chunk):
                    self.client.raw_data_received(stream[i : i + chunk])
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    async def reports(self, count: int) -> list[list[TagRead]]:
        got: list[list[TagRead]] = []
        async with asyncio.timeout(30):
            while len(got) < count:
                event = await self.bridge.events.get()
                reads = getattr(event, "reads", None)
                if reads is not None:
                    got.append(reads)
                    self.bridge.accepted()
        return got


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_undecodable_frames_are_counted_and_skipped(testdata: Path, chunk: int) -> None:
    """dx101_e: vendor-custom parameters everywhere; sllurp raises struct.error on some."""
    ltk = testdata / "llrp" / "ltk-dx101"
    bad, good = (ltk / "dx101_e.bin").read_bytes(), (ltk / "dx101_b.bin").read_bytes()
    source = RfidLlrpSource("dock", r420(), "127.0.0.1", 1)
    fed = Fed(source, queued_max=1)
    undecodable = 0
    expected: list[str] = []  # the EPCs of every report sllurp decodes, frame by frame
    expected_reports = 0
    for frame in frames(bad + good):
        try:
            decoded = LLRPMessage(msgbytes=frame).msgdict
        except Exception:
            undecodable += 1
            continue
        entries = decoded.get("RO_ACCESS_REPORT", {}).get("TagReportData") or []
        epcs = [r.epc for r in tag_reads("dock", entries, NOW)[0]]
        expected_reports += bool(epcs)
        expected += epcs
    thread = fed.feed(bad + good, chunk)
    reports = await fed.reports(expected_reports)
    await asyncio.to_thread(thread.join, 30)
    assert fed.errors == []
    assert source.counters.decode_errors == undecodable >= 73
    assert [r.epc for batch in reports for r in batch] == expected
    assert len(expected) > 132


async def test_a_60000_tag_report_arrives_whole() -> None:
    tags = [
        tag_entry(i.to_bytes(12, "big"), 1 + i % 4, -40 - i % 30, 10**15 + i, 10**15 + i, 1)
        for i in range(60_000)
    ]
    frame = message(RO_ACCESS_REPORT, b"".join(tags))
    assert len(frame) > 2_500_000
    source = RfidLlrpSource("dock", r420(), "127.0.0.1", 1)
    fed = Fed(source)
    ticks = 0

    async def probe() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    prober = asyncio.create_task(probe())
    thread = fed.feed(frame, 4096)
    (reads,) = await fed.reports(1)
    prober.cancel()
    await asyncio.to_thread(thread.join, 30)
    assert fed.errors == []
    assert len(reads) == 60_000
    assert reads[59_999].epc == f"{59_999:024X}"
    assert ticks > 0  # the loop kept running while sllurp decoded in its thread


async def test_a_frame_too_large_loses_framing_not_the_process() -> None:
    from sllurp.llrp_errors import ReaderConfigurationError

    source = RfidLlrpSource("dock", r420(), "127.0.0.1", 1, frame_bytes_max=1000)
    fed = Fed(source)
    big = HEADER.pack((1 << 10) | RO_ACCESS_REPORT, 5000, 1)
    thread = fed.feed(big, 4096)
    await asyncio.to_thread(thread.join, 10)
    assert [type(e) for e in fed.errors] == [ReaderConfigurationError]  # sllurp's loop: reconnect
    assert source.counters.decode_errors == 1


def test_status_names_the_counters() -> None:
    source = RfidLlrpSource("dock", r420(), "127.0.0.1", 5084)
    status = source.status()
    assert (status.kind, status.state) == ("rfid", "unknown")
    assert status.detail is not None
    for name in ("reports=0", "tags=0", "reconnects=0", "decode_errors=0", "keepalive_timeouts=0"):
        assert name in status.detail
