"""TagReportData: encoded in the order LLRP 1.0.1 §16.2.7.3 gives, decoded for checks."""

import struct
from dataclasses import dataclass, field

from simulators.llrp.frames import FrameError
from simulators.llrp.params import TV, VENDOR_IMPINJ, P, Param, custom, iter_params, tlv, tv

EPC96_BITS = 96
IMPINJ_PHASE = 56  # ImpinjRFPhaseAngle: u16, 0..4095 for 0..360 degrees
IMPINJ_PEAK_RSSI = 57  # ImpinjPeakRSSI: s16, dBm x 100
PHASE_UNITS = 4096
COUNT_MAX = 0xFFFF


@dataclass(frozen=True, slots=True)
class TagReport:
    """One TagReportData; None leaves a field out (as the content selector says)."""

    epc: bytes
    epc_bits: int | None = None  # None: 8 x len(epc); 96 is sent as the EPC-96 TV parameter
    rospec_id: int | None = None
    spec_index: int | None = None
    inventory_parameter_spec_id: int | None = None
    antenna_id: int | None = None
    peak_rssi_dbm: int | None = None
    channel_index: int | None = None
    first_seen_utc_us: int | None = None
    first_seen_uptime_us: int | None = None
    last_seen_utc_us: int | None = None
    last_seen_uptime_us: int | None = None
    tag_seen_count: int | None = None
    pc_bits: int | None = None
    crc: int | None = None
    access_spec_id: int | None = None
    impinj_phase: int | None = None  # 0..4095
    impinj_peak_rssi_cdbm: int | None = None
    custom: tuple[bytes, ...] = field(default=())  # further encoded custom parameters

    @property
    def bits(self) -> int:
        return 8 * len(self.epc) if self.epc_bits is None else self.epc_bits


def phase_units(phase_deg: float) -> int:
    return round(phase_deg % 360.0 / 360.0 * PHASE_UNITS) % PHASE_UNITS


def encode(tag: TagReport) -> bytes:
    if tag.bits == EPC96_BITS:
        parts = [tv(TV.EPC_96, tag.epc)]
    else:
        assert len(tag.epc) == (tag.bits + 7) // 8, (tag.bits, tag.epc)
        parts = [tlv(P.EPCData, struct.pack("!H", tag.bits), tag.epc)]
    parts += [tv(t, struct.pack(fmt, v)) for t, fmt, v in _fields(tag) if v is not None]
    if tag.impinj_phase is not None:
        parts.append(custom(VENDOR_IMPINJ, IMPINJ_PHASE, struct.pack("!H", tag.impinj_phase)))
    if tag.impinj_peak_rssi_cdbm is not None:
        rssi = struct.pack("!h", tag.impinj_peak_rssi_cdbm)
        parts.append(custom(VENDOR_IMPINJ, IMPINJ_PEAK_RSSI, rssi))
    return tlv(P.TagReportData, *parts, *tag.custom)


def _fields(tag: TagReport) -> list[tuple[TV, str, int | None]]:
    return [
        (TV.ROSpecID, "!I", tag.rospec_id),
        (TV.SpecIndex, "!H", tag.spec_index),
        (TV.InventoryParameterSpecID, "!H", tag.inventory_parameter_spec_id),
        (TV.AntennaID, "!H", tag.antenna_id),
        (TV.PeakRSSI, "!b", tag.peak_rssi_dbm),
        (TV.ChannelIndex, "!H", tag.channel_index),
        (TV.FirstSeenTimestampUTC, "!Q", tag.first_seen_utc_us),
        (TV.FirstSeenTimestampUptime, "!Q", tag.first_seen_uptime_us),
        (TV.LastSeenTimestampUTC, "!Q", tag.last_seen_utc_us),
        (TV.LastSeenTimestampUptime, "!Q", tag.last_seen_uptime_us),
        (TV.TagSeenCount, "!H", tag.tag_seen_count),
        (TV.C1G2_PC, "!H", tag.pc_bits),
        (TV.C1G2_CRC, "!H", tag.crc),
        (TV.AccessSpecID, "!I", tag.access_spec_id),
    ]


_TV_NAMES = {
    TV.ROSpecID: ("rospec_id", "!I"),
    TV.SpecIndex: ("spec_index", "!H"),
    TV.InventoryParameterSpecID: ("inventory_parameter_spec_id", "!H"),
    TV.AntennaID: ("antenna_id", "!H"),
    TV.PeakRSSI: ("peak_rssi_dbm", "!b"),
    TV.ChannelIndex: ("channel_index", "!H"),
    TV.FirstSeenTimestampUTC: ("first_seen_utc_us", "!Q"),
    TV.FirstSeenTimestampUptime: ("first_seen_uptime_us", "!Q"),
    TV.LastSeenTimestampUTC: ("last_seen_utc_us", "!Q"),
    TV.LastSeenTimestampUptime: ("last_seen_uptime_us", "!Q"),
    TV.TagSeenCount: ("tag_seen_count", "!H"),
    TV.C1G2_PC: ("pc_bits", "!H"),
    TV.C1G2_CRC: ("crc", "!H"),
    TV.AccessSpecID: ("access_spec_id", "!I"),
}


def decode(body: bytes) -> TagReport:
    """The body of a TagReportData parameter (fields this codec does not model are skipped,
    custom ones other than Impinj's phase and peak RSSI are kept encoded)."""
    values: dict[str, object] = {}
    customs: list[bytes] = []
    for p in iter_params(body):
        _take(p, values, customs)
    if "epc" not in values:
        raise FrameError("TagReportData without EPCData or EPC-96")
    return TagReport(**values, custom=tuple(customs))  # type: ignore[arg-type]


def _take(p: Param, values: dict[str, object], customs: list[bytes]) -> None:
    if p.tv and p.type == TV.EPC_96:
        values.update(epc=p.body, epc_bits=EPC96_BITS)
    elif p.tv and p.type in _TV_NAMES:
        name, fmt = _TV_NAMES[TV(p.type)]
        values[name] = struct.unpack(fmt, p.body)[0]
    elif not p.tv and p.type == P.EPCData:
        if len(p.body) < 2:
            raise FrameError("EPCData is cut short")
        bits = struct.unpack_from("!H", p.body)[0]
        values.update(epc=p.body[2 : 2 + (bits + 7) // 8], epc_bits=bits)
    elif p.vendor == VENDOR_IMPINJ and p.subtype == IMPINJ_PHASE and len(p.body) >= 2:
        values["impinj_phase"] = struct.unpack_from("!H", p.body)[0]
    elif p.vendor == VENDOR_IMPINJ and p.subtype == IMPINJ_PEAK_RSSI and len(p.body) >= 2:
        values["impinj_peak_rssi_cdbm"] = struct.unpack_from("!h", p.body)[0]
    elif p.vendor:
        customs.append(custom(p.vendor, p.subtype, p.body))


def report_body(tags: list[TagReport]) -> bytes:
    """The body of an RO_ACCESS_REPORT carrying `tags`."""
    return b"".join(encode(t) for t in tags)


def decode_report(body: bytes) -> list[TagReport]:
    return [decode(p.body) for p in iter_params(body) if p.type == P.TagReportData and not p.tv]
