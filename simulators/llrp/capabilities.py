"""GET_READER_CAPABILITIES_RESPONSE from a reader model (LLRP 1.0.1 §16.2.3)."""

import base64
import struct
from enum import IntEnum

from simulators.llrp.models import Json, ReaderModel
from simulators.llrp.params import P, tlv, utf8v


class Requested(IntEnum):
    All = 0
    GeneralDeviceCapabilities = 1
    LLRPCapabilities = 2
    RegulatoryCapabilities = 3
    AirProtocolLLRPCapabilities = 4


def encode(model: ReaderModel, requested: int) -> bytes:
    """The parameters after LLRPStatus for `requested` (a Requested value)."""
    caps = model.capabilities
    want = set(Requested) if requested == Requested.All else {Requested(requested)}
    parts = []
    if Requested.GeneralDeviceCapabilities in want:
        parts.append(general(caps["GeneralDeviceCapabilities"]))
    if Requested.LLRPCapabilities in want:
        parts.append(llrp(caps["LLRPCapabilities"]))
    if Requested.RegulatoryCapabilities in want:
        parts.append(regulatory(caps["RegulatoryCapabilities"]))
    if Requested.AirProtocolLLRPCapabilities in want:
        parts.append(c1g2(caps.get("C1G2LLRPCapabilities")))
    return b"".join(parts)


def general(g: Json) -> bytes:
    flags = bool(g.get("CanSetAntennaProperties")) << 15 | bool(g.get("HasUTCClock")) << 14
    head = struct.pack(
        "!HHII", g["MaxSupportedAntennas"], flags, g["DeviceManufacturer"], g["Model"]
    )
    parts = [head, utf8v(g["FirmwareVersion"])]
    for rs in g.get("ReceiveSensitivities") or []:
        entry = struct.pack("!Hh", rs["Index"], rs["ReceiveSensitivity"])
        parts.append(tlv(P.ReceiveSensitivityTableEntry, entry))
    gpio = g.get("GPIOCapabilities")
    if gpio is not None:
        counts = struct.pack("!HH", gpio.get("NumGPIs", 0), gpio.get("NumGPOs", 0))
        parts.append(tlv(P.GPIOCapabilities, counts))
    for ap in g.get("PerAntennaAirProtocols") or []:
        ids = base64.b64decode(ap["AirProtocolIDs"])
        parts.append(
            tlv(P.PerAntennaAirProtocol, struct.pack("!HH", ap["AntennaID"], len(ids)), ids)
        )
    return tlv(P.GeneralDeviceCapabilities, *parts)


def llrp(c: Json) -> bytes:
    flags = (
        bool(c.get("CanDoRFSurvey")) << 7
        | bool(c.get("CanReportBufferFillWarning")) << 6
        | bool(c.get("SupportsClientRequestOpSpec")) << 5
        | bool(c.get("CanDoTagInventoryStateAwareSingulation")) << 4
        | bool(c.get("SupportsEventsAndReportHolding")) << 3
    )
    body = struct.pack(
        "!BBHIIIII",
        flags,
        c["MaxPriorityLevelSupported"],
        c["ClientRequestedOpSpecTimeout"],
        c["MaxROSpecs"],
        c["MaxSpecsPerROSpec"],
        c["MaxInventoryParameterSpecsPerAISpec"],
        c["MaxAccessSpecs"],
        c["MaxOpSpecsPerAccessSpec"],
    )
    return tlv(P.LLRPCapabilities, body)


def regulatory(r: Json) -> bytes:
    band = r["UHFBandCapabilities"]
    parts = [
        tlv(P.TransmitPowerLevelTableEntry, struct.pack("!Hh", t["Index"], t["TransmitPowerValue"]))
        for t in band["TransmitPowerLevels"]
    ]
    parts.append(_frequencies(band["FrequencyInformation"]))
    modes = [_mode(m) for m in band["C1G2RFModes"]["UHFC1G2RFModeTableEntries"]]
    parts.append(tlv(P.UHFC1G2RFModeTable, *modes))
    head = struct.pack("!HH", r["CountryCode"], r["CommunicationsStandard"])
    return tlv(P.RegulatoryCapabilities, head, tlv(P.UHFBandCapabilities, *parts))


def _frequencies(f: Json) -> bytes:
    parts = [bytes([bool(f.get("Hopping")) << 7])]
    for hop in f.get("FrequencyHopTables") or []:
        freqs = hop["Frequencies"]
        head = struct.pack("!BBH", hop["HopTableID"], 0, len(freqs))
        parts.append(tlv(P.FrequencyHopTable, head, struct.pack(f"!{len(freqs)}I", *freqs)))
    fixed = f.get("FixedFrequencyTable")
    if fixed:
        freqs = fixed["Frequencies"]
        body = struct.pack(f"!H{len(freqs)}I", len(freqs), *freqs)
        parts.append(tlv(P.FixedFrequencyTable, body))
    return tlv(P.FrequencyInformation, *parts)


def _mode(m: Json) -> bytes:
    flags = bool(m.get("DivideRatio")) << 7 | bool(m.get("IsEPCHagConformant")) << 6
    body = struct.pack(
        "!IBBBBIIIII",
        m["ModeID"],
        flags,
        m["Modulation"],
        m["ForwardLinkModulation"],
        m["SpectralMask"],
        m["BackscatterDataRate"],
        m["PIERatio"],
        m["MinTariTime"],
        m["MaxTariTime"],
        m["StepTariTime"],
    )
    return tlv(P.UHFC1G2RFModeTableEntry, body)


def c1g2(c: Json | None) -> bytes:
    c = c or {}
    flags = (
        bool(c.get("SupportsBlockErase")) << 7
        | bool(c.get("SupportsBlockWrite")) << 6
        | bool(c.get("SupportsBlockPermalock")) << 5
        | bool(c.get("SupportsTagRecommissioning")) << 4
        | bool(c.get("SupportsUMIMethod2")) << 3
        | bool(c.get("SupportsXPC")) << 2
    )
    return tlv(
        P.C1G2LLRPCapabilities, struct.pack("!BH", flags, c.get("MaxSelectFiltersPerQuery", 0))
    )
