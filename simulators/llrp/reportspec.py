"""ROReportSpec: when to report (trigger, N) and what each TagReportData carries."""

import struct
from dataclasses import dataclass, field

from simulators.llrp.params import VENDOR_IMPINJ, P, custom, first, iter_params, tlv, unpack

IMPINJ_TAG_REPORT_CONTENT_SELECTOR = 50
IMPINJ_ENABLE_PHASE = 52
IMPINJ_ENABLE_PEAK_RSSI = 53
TRIGGER_NONE = 0
TRIGGER_N_OR_END_OF_AISPEC = 1
TRIGGER_N_OR_END_OF_ROSPEC = 2

_FLAGS = (
    "rospec_id",
    "spec_index",
    "inventory_parameter_spec_id",
    "antenna_id",
    "channel_index",
    "peak_rssi",
    "first_seen",
    "last_seen",
    "tag_seen_count",
    "access_spec_id",
)


@dataclass(frozen=True, slots=True)
class ContentSelector:
    rospec_id: bool = False
    spec_index: bool = False
    inventory_parameter_spec_id: bool = False
    antenna_id: bool = True
    channel_index: bool = False
    peak_rssi: bool = True
    first_seen: bool = True
    last_seen: bool = False
    tag_seen_count: bool = False
    access_spec_id: bool = False
    crc: bool = False
    pc_bits: bool = False
    impinj_phase: bool = False  # ImpinjTagReportContentSelector, honoured by Impinj models only
    impinj_peak_rssi: bool = False


@dataclass(frozen=True, slots=True)
class ReportSpec:
    trigger: int = TRIGGER_N_OR_END_OF_ROSPEC
    n: int = 1
    selector: ContentSelector = field(default_factory=ContentSelector)


def encode(spec: ReportSpec) -> bytes:
    sel = spec.selector
    flags = sum(1 << (15 - i) for i, name in enumerate(_FLAGS) if getattr(sel, name))
    memory = tlv(P.C1G2EPCMemorySelector, bytes([sel.crc << 7 | sel.pc_bits << 6]))
    parts = [
        struct.pack("!BH", spec.trigger, spec.n),
        tlv(P.TagReportContentSelector, struct.pack("!H", flags), memory),
    ]
    if sel.impinj_phase or sel.impinj_peak_rssi:
        parts.append(_impinj_selector(sel))
    return tlv(P.ROReportSpec, *parts)


def _impinj_selector(sel: ContentSelector) -> bytes:
    return custom(
        VENDOR_IMPINJ,
        IMPINJ_TAG_REPORT_CONTENT_SELECTOR,
        custom(VENDOR_IMPINJ, IMPINJ_ENABLE_PHASE, struct.pack("!H", sel.impinj_phase)),
        custom(VENDOR_IMPINJ, IMPINJ_ENABLE_PEAK_RSSI, struct.pack("!H", sel.impinj_peak_rssi)),
    )


def decode(body: bytes) -> ReportSpec:
    """The body of an ROReportSpec parameter."""
    trigger, n = unpack("!BH", body, "ROReportSpec")
    params = list(iter_params(body[3:]))
    values: dict[str, bool] = {}
    trcs = first(params, P.TagReportContentSelector)
    if trcs is not None:
        (flags,) = unpack("!H", trcs.body, "TagReportContentSelector")
        values = {name: bool(flags >> (15 - i) & 1) for i, name in enumerate(_FLAGS)}
        memory = first(list(iter_params(trcs.body[2:])), P.C1G2EPCMemorySelector)
        if memory is not None and memory.body:
            values.update(crc=bool(memory.body[0] & 0x80), pc_bits=bool(memory.body[0] & 0x40))
    for p in params:
        if p.vendor == VENDOR_IMPINJ and p.subtype == IMPINJ_TAG_REPORT_CONTENT_SELECTOR:
            values.update(_decode_impinj(p.body))
    return ReportSpec(trigger, n, ContentSelector(**values))


def _decode_impinj(body: bytes) -> dict[str, bool]:
    values = {}
    for p in iter_params(body):
        if p.vendor != VENDOR_IMPINJ or len(p.body) < 2:
            continue
        (mode,) = struct.unpack_from("!H", p.body)
        if p.subtype == IMPINJ_ENABLE_PHASE:
            values["impinj_phase"] = mode == 1
        elif p.subtype == IMPINJ_ENABLE_PEAK_RSSI:
            values["impinj_peak_rssi"] = mode == 1
    return values
