"""LLRP parameters: TLV (6 reserved bits, 10-bit type, 16-bit length incl. the 4-byte header),
TV (1 bit set, 7-bit type, fixed-length value) and custom TLV (type 1023, vendor, subtype)."""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from simulators.llrp.frames import FrameError

TLV_HEADER = struct.Struct("!HH")
CUSTOM_HEADER = struct.Struct("!HHII")
TLV_BYTES_MAX = 0xFFFF
CUSTOM = 1023
VENDOR_IMPINJ = 25882
VENDOR_ZEBRA = 161


class TV(IntEnum):
    """TV-encoded parameter types (value lengths in TV_BYTES)."""

    AntennaID = 1
    FirstSeenTimestampUTC = 2
    FirstSeenTimestampUptime = 3
    LastSeenTimestampUTC = 4
    LastSeenTimestampUptime = 5
    PeakRSSI = 6
    ChannelIndex = 7
    TagSeenCount = 8
    ROSpecID = 9
    InventoryParameterSpecID = 10
    C1G2_CRC = 11
    C1G2_PC = 12
    EPC_96 = 13
    SpecIndex = 14
    ClientRequestOpSpecResult = 15
    AccessSpecID = 16
    OpSpecID = 17
    C1G2SingulationDetails = 18


TV_BYTES = {
    TV.AntennaID: 2,
    TV.FirstSeenTimestampUTC: 8,
    TV.FirstSeenTimestampUptime: 8,
    TV.LastSeenTimestampUTC: 8,
    TV.LastSeenTimestampUptime: 8,
    TV.PeakRSSI: 1,
    TV.ChannelIndex: 2,
    TV.TagSeenCount: 2,
    TV.ROSpecID: 4,
    TV.InventoryParameterSpecID: 2,
    TV.C1G2_CRC: 2,
    TV.C1G2_PC: 2,
    TV.EPC_96: 12,
    TV.SpecIndex: 2,
    TV.ClientRequestOpSpecResult: 2,
    TV.AccessSpecID: 4,
    TV.OpSpecID: 2,
    TV.C1G2SingulationDetails: 4,
}


class P(IntEnum):
    """TLV parameter types used here."""

    UTCTimestamp = 128
    Uptime = 129
    GeneralDeviceCapabilities = 137
    ReceiveSensitivityTableEntry = 139
    PerAntennaAirProtocol = 140
    GPIOCapabilities = 141
    LLRPCapabilities = 142
    RegulatoryCapabilities = 143
    UHFBandCapabilities = 144
    TransmitPowerLevelTableEntry = 145
    FrequencyInformation = 146
    FrequencyHopTable = 147
    FixedFrequencyTable = 148
    ROSpec = 177
    ROBoundarySpec = 178
    ROSpecStartTrigger = 179
    PeriodicTriggerValue = 180
    GPITriggerValue = 181
    ROSpecStopTrigger = 182
    AISpec = 183
    AISpecStopTrigger = 184
    TagObservationTrigger = 185
    InventoryParameterSpec = 186
    RFSurveySpec = 187
    AccessSpec = 207
    LLRPConfigurationStateValue = 217
    Identification = 218
    GPOWriteData = 219
    KeepaliveSpec = 220
    AntennaProperties = 221
    AntennaConfiguration = 222
    RFReceiver = 223
    RFTransmitter = 224
    GPIPortCurrentState = 225
    EventsAndReports = 226
    ROReportSpec = 237
    TagReportContentSelector = 238
    AccessReportSpec = 239
    TagReportData = 240
    EPCData = 241
    ReaderEventNotificationSpec = 244
    EventNotificationState = 245
    ReaderEventNotificationData = 246
    HoppingEvent = 247
    GPIEvent = 248
    ROSpecEvent = 249
    ReportBufferLevelWarningEvent = 250
    ReportBufferOverflowErrorEvent = 251
    ReaderExceptionEvent = 252
    RFSurveyEvent = 253
    AISpecEvent = 254
    AntennaEvent = 255
    ConnectionAttemptEvent = 256
    ConnectionCloseEvent = 257
    LLRPStatus = 287
    FieldError = 288
    ParameterError = 289
    C1G2LLRPCapabilities = 327
    UHFC1G2RFModeTable = 328
    UHFC1G2RFModeTableEntry = 329
    C1G2InventoryCommand = 330
    C1G2RFControl = 335
    C1G2SingulationControl = 336
    C1G2EPCMemorySelector = 348


@dataclass(frozen=True, slots=True)
class Param:
    """One decoded parameter; `body` is what follows the header (for custom ones: the
    vendor and subtype too are taken off), for TV ones the fixed-length value."""

    type: int
    body: bytes
    tv: bool = False
    vendor: int = 0
    subtype: int = 0


def tlv(ptype: int, *parts: bytes) -> bytes:
    assert 128 <= ptype < 1024, ptype
    body = b"".join(parts)
    length = TLV_HEADER.size + len(body)
    if length > TLV_BYTES_MAX:
        raise FrameError(f"parameter {ptype}: {length} bytes > {TLV_BYTES_MAX}")
    return TLV_HEADER.pack(ptype, length) + body


def tv(ptype: TV, value: bytes) -> bytes:
    assert len(value) == TV_BYTES[ptype], (ptype, value)
    return bytes([0x80 | ptype]) + value


def custom(vendor: int, subtype: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    length = CUSTOM_HEADER.size + len(body)
    if length > TLV_BYTES_MAX:
        raise FrameError(f"custom parameter {vendor}/{subtype}: {length} bytes")
    return CUSTOM_HEADER.pack(CUSTOM, length, vendor, subtype) + body


def utf8v(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def iter_params(data: bytes) -> Iterator[Param]:
    """Each parameter in `data` in order; FrameError if one is cut short or unknown TV."""
    pos = 0
    while pos < len(data):
        param, pos = _next(data, pos)
        yield param


def _next(data: bytes, pos: int) -> tuple[Param, int]:
    first = data[pos]
    if first & 0x80:
        ptype = first & 0x7F
        size = TV_BYTES.get(ptype)  # type: ignore[call-overload]
        if size is None:
            raise FrameError(f"unknown TV parameter type {ptype} at byte {pos}")
        end = pos + 1 + size
        if end > len(data):
            raise FrameError(f"TV parameter {ptype} at byte {pos} is cut short")
        return Param(ptype, data[pos + 1 : end], tv=True), end
    if pos + TLV_HEADER.size > len(data):
        raise FrameError(f"parameter header at byte {pos} is cut short")
    word, length = TLV_HEADER.unpack_from(data, pos)
    ptype = word & 0x3FF
    if length < TLV_HEADER.size or pos + length > len(data):
        raise FrameError(f"parameter {ptype} at byte {pos}: bad length {length}")
    if ptype != CUSTOM:
        return Param(ptype, data[pos + TLV_HEADER.size : pos + length]), pos + length
    if length < CUSTOM_HEADER.size:
        raise FrameError(f"custom parameter at byte {pos}: length {length} too short")
    _, _, vendor, subtype = CUSTOM_HEADER.unpack_from(data, pos)
    body = data[pos + CUSTOM_HEADER.size : pos + length]
    return Param(ptype, body, vendor=vendor, subtype=subtype), pos + length


def first(params: list[Param], ptype: int) -> Param | None:
    return next((p for p in params if p.type == ptype and not p.tv), None)


def unpack(fmt: str, body: bytes, what: str) -> tuple[int, ...]:
    """The fixed fields at the start of a body; FrameError (not struct.error) if too short."""
    st = struct.Struct(fmt)
    if len(body) < st.size:
        raise FrameError(f"{what}: {len(body)} bytes, fields need {st.size}")
    return st.unpack_from(body)
