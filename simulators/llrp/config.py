"""The reader's configuration (GET/SET_READER_CONFIG, LLRP 1.0.1 §16.2.6): factory defaults
from the model, changed by SET_READER_CONFIG, forgotten by a reboot."""

import struct
from dataclasses import dataclass, field, replace
from enum import IntEnum

from simulators.llrp import reportspec
from simulators.llrp.frames import FrameError
from simulators.llrp.models import Json, ReaderModel
from simulators.llrp.params import P, Param, iter_params, tlv, unpack
from simulators.llrp.reportspec import ContentSelector, ReportSpec
from simulators.llrp.status import Code, StatusError, parameter_error

KEEPALIVE_PERIODIC = 1
EVENT_TYPES = 9  # HoppingEvent .. AntennaEvent in LLRP 1.0.1


class Requested(IntEnum):
    All = 0
    Identification = 1
    AntennaProperties = 2
    AntennaConfiguration = 3
    ROReportSpec = 4
    ReaderEventNotificationSpec = 5
    AccessReportSpec = 6
    LLRPConfigurationStateValue = 7
    KeepaliveSpec = 8
    GPIPortCurrentState = 9
    GPOWriteData = 10
    EventsAndReports = 11


@dataclass(frozen=True, slots=True)
class AntennaConfig:
    antenna_id: int
    transmit_power: int  # index into the power table
    hop_table_id: int = 1
    channel_index: int = 0
    receiver_sensitivity: int = 0
    mode_id: int = 0
    tari: int = 0
    session: int = 1
    tag_population: int = 32


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    antennas: tuple[AntennaConfig, ...]
    connected: dict[int, bool] = field(default_factory=dict)  # AntennaProperties
    events: dict[int, bool] = field(default_factory=dict)
    report: ReportSpec = field(default_factory=ReportSpec)
    access_report_trigger: int = 0
    keepalive_ms: int = 0  # 0: no KEEPALIVE
    hold_events_and_reports: bool = False
    gpi: tuple[tuple[int, bool, int], ...] = ()
    gpo: tuple[tuple[int, bool], ...] = ()
    state_value: int = 0


def factory(model: ReaderModel, wired: bool = True) -> ReaderConfig:
    """Factory defaults as the model recorded them; `wired`: every antenna port connected (a
    portal's are), else connected as recorded."""
    c = model.config
    keepalive = c.get("KeepAliveSpec") or {}
    return ReaderConfig(
        antennas=tuple(_antenna(a) for a in c["AntennaConfigurations"]),
        connected={
            p["AntennaID"]: wired or bool(p["AntennaConnected"]) for p in c["AntennaProperties"]
        },
        events={
            e["ReaderEventType"]: bool(e["NotificationEnabled"])
            for e in c["ReaderEventNotificationSpec"]["EventNotificationStates"]
        },
        report=_report(c["ROReportSpec"]),
        access_report_trigger=int(c.get("AccessReportSpec") or 0),
        keepalive_ms=int(keepalive.get("Interval", 0)) if keepalive.get("Trigger") else 0,
        hold_events_and_reports=bool(c.get("EventsAndReports")),
        gpi=tuple((g["Port"], bool(g["Enabled"]), g["State"]) for g in c["GPIPortCurrentStates"]),
        gpo=tuple((g["Port"], bool(g["Data"])) for g in c["GPOWriteData"]),
        state_value=int(c.get("LLRPConfigurationStateValue") or 0),
    )


def _antenna(a: Json) -> AntennaConfig:
    tx, inv = a["RFTransmitter"], a["C1G2InventoryCommand"]
    sing = inv["SingulationControl"]
    return AntennaConfig(
        a["AntennaID"],
        tx["TransmitPowerIndex"],
        tx["HopTableID"],
        tx["ChannelIndex"],
        a.get("RFReceiver") or 0,
        inv["RFControl"]["RFModeID"],
        inv["RFControl"]["Tari"],
        sing["Session"],
        sing["TagPopulation"],
    )


def _report(r: Json) -> ReportSpec:
    s = r.get("TagReportContentSelector") or {}
    sel = ContentSelector(
        rospec_id=bool(s.get("EnableROSpecID")),
        spec_index=bool(s.get("EnableSpecIndex")),
        inventory_parameter_spec_id=bool(s.get("EnableInventoryParamSpecID")),
        antenna_id=bool(s.get("EnableAntennaID")),
        channel_index=bool(s.get("EnableChannelIndex")),
        peak_rssi=bool(s.get("EnablePeakRSSI")),
        first_seen=bool(s.get("EnableFirstSeenTimestamp")),
        last_seen=bool(s.get("EnableLastSeenTimestamp")),
        tag_seen_count=bool(s.get("EnableTagSeenCount")),
        access_spec_id=bool(s.get("EnableAccessSpecID")),
    )
    return ReportSpec(int(r["Trigger"]), int(r["N"]), sel)


def encode(cfg: ReaderConfig, model: ReaderModel, requested: int, antenna_id: int) -> bytes:
    """The parameters after LLRPStatus of GET_READER_CONFIG_RESPONSE."""
    want = {requested} if requested else set(Requested)
    ants = [a for a in cfg.antennas if antenna_id in (0, a.antenna_id)]
    parts: list[bytes] = []
    if Requested.Identification in want:
        rid = model.reader_id
        parts.append(tlv(P.Identification, struct.pack("!BH", 0, len(rid)), rid))
    if Requested.AntennaProperties in want:
        parts += [_properties(a.antenna_id, cfg.connected.get(a.antenna_id, True)) for a in ants]
    if Requested.AntennaConfiguration in want:
        parts += [_encode_antenna(a) for a in ants]
    if Requested.ReaderEventNotificationSpec in want:
        states = [
            tlv(P.EventNotificationState, struct.pack("!HB", t, cfg.events.get(t, False) << 7))
            for t in range(EVENT_TYPES)
        ]
        parts.append(tlv(P.ReaderEventNotificationSpec, *states))
    if Requested.ROReportSpec in want:
        parts.append(reportspec.encode(cfg.report))
    if Requested.AccessReportSpec in want:
        parts.append(tlv(P.AccessReportSpec, bytes([cfg.access_report_trigger])))
    if Requested.LLRPConfigurationStateValue in want:
        parts.append(tlv(P.LLRPConfigurationStateValue, struct.pack("!I", cfg.state_value)))
    if Requested.KeepaliveSpec in want:
        kind = KEEPALIVE_PERIODIC if cfg.keepalive_ms else 0
        parts.append(tlv(P.KeepaliveSpec, struct.pack("!BI", kind, cfg.keepalive_ms)))
    if Requested.GPIPortCurrentState in want:
        parts += [
            tlv(P.GPIPortCurrentState, struct.pack("!HBB", p, e << 7, s)) for p, e, s in cfg.gpi
        ]
    if Requested.GPOWriteData in want:
        parts += [tlv(P.GPOWriteData, struct.pack("!HB", p, d << 7)) for p, d in cfg.gpo]
    if Requested.EventsAndReports in want:
        parts.append(tlv(P.EventsAndReports, bytes([cfg.hold_events_and_reports << 7])))
    return b"".join(parts)


def _properties(antenna_id: int, connected: bool) -> bytes:
    return tlv(P.AntennaProperties, struct.pack("!BHh", connected << 7, antenna_id, 0))


def _encode_antenna(a: AntennaConfig) -> bytes:
    rf = tlv(
        P.RFTransmitter, struct.pack("!HHH", a.hop_table_id, a.channel_index, a.transmit_power)
    )
    control = tlv(P.C1G2RFControl, struct.pack("!HH", a.mode_id, a.tari))
    sing = tlv(P.C1G2SingulationControl, struct.pack("!BHI", a.session << 6, a.tag_population, 0))
    inventory = tlv(P.C1G2InventoryCommand, b"\x00", control, sing)
    receiver = tlv(P.RFReceiver, struct.pack("!H", a.receiver_sensitivity))
    return tlv(P.AntennaConfiguration, struct.pack("!H", a.antenna_id), receiver, rf, inventory)


def apply(cfg: ReaderConfig, body: bytes, model: ReaderModel) -> ReaderConfig:
    """SET_READER_CONFIG's body applied to `cfg`; StatusError for what a reader refuses."""
    try:
        (flags,) = unpack("!B", body, "SET_READER_CONFIG")
        if flags & 0x80:
            cfg = factory(model)
        for p in iter_params(body[1:]):
            cfg = _apply(cfg, p, model)
    except FrameError as e:
        raise _refused(e) from e
    return cfg


def _refused(e: FrameError) -> StatusError:
    return parameter_error(0, Code.P_ParameterError, f"SET_READER_CONFIG: {e}")


def _apply(cfg: ReaderConfig, p: Param, model: ReaderModel) -> ReaderConfig:
    if p.type == P.KeepaliveSpec:
        kind, interval_ms = unpack("!BI", p.body, "KeepaliveSpec")
        return replace(cfg, keepalive_ms=interval_ms if kind == KEEPALIVE_PERIODIC else 0)
    if p.type == P.ROReportSpec:
        return replace(cfg, report=reportspec.decode(p.body))
    if p.type == P.EventsAndReports:
        return replace(
            cfg, hold_events_and_reports=bool(unpack("!B", p.body, "EventsAndReports")[0] & 0x80)
        )
    if p.type == P.AccessReportSpec:
        return replace(cfg, access_report_trigger=unpack("!B", p.body, "AccessReportSpec")[0])
    if p.type == P.ReaderEventNotificationSpec:
        events = dict(cfg.events)
        for s in iter_params(p.body):
            kind, flag = unpack("!HB", s.body, "EventNotificationState")
            events[kind] = bool(flag & 0x80)
        return replace(cfg, events=events)
    if p.type == P.AntennaConfiguration:
        return _apply_antenna(cfg, p.body, model)
    return cfg  # AntennaProperties, GPIO, custom parameters: accepted, not modelled


def _apply_antenna(cfg: ReaderConfig, body: bytes, model: ReaderModel) -> ReaderConfig:
    (antenna_id,) = unpack("!H", body, "AntennaConfiguration")
    if antenna_id > model.antennas_max:
        raise parameter_error(
            P.AntennaConfiguration,
            Code.P_FieldError,
            f"AntennaID {antenna_id} out of range 1..{model.antennas_max}",
            (0, Code.A_OutOfRange),
        )
    changes: dict[str, int] = {}
    for p in iter_params(body[2:]):
        if p.type == P.RFTransmitter:
            hop, channel, power = unpack("!HHH", p.body, "RFTransmitter")
            if power not in {i for i, _ in model.power_table}:
                raise parameter_error(
                    P.RFTransmitter,
                    Code.P_FieldError,
                    f"TransmitPower index {power} not in the power table",
                    (2, Code.A_OutOfRange),
                )
            changes.update(hop_table_id=hop, channel_index=channel, transmit_power=power)
    antennas = tuple(
        replace(a, **changes) if antenna_id in (0, a.antenna_id) else a for a in cfg.antennas
    )
    return replace(cfg, antennas=antennas)
