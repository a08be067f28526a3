"""The LLRP codec against frames written by others: the LLRP Toolkit's golden streams (re-encoded
from their XML byte for byte), EdgeX captures from real readers, and llrp-rs' test messages."""

import base64
import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from simulators.llrp import capabilities, config, events, frames, rospec, status, tags
from simulators.llrp.frames import MessageType as M
from simulators.llrp.models import ReaderModel, load
from simulators.llrp.params import P, first, iter_params
from simulators.llrp.status import Code, FieldError, Status
from simulators.llrp.tags import TagReport


def local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if local(c) == name), None)


def number(el: ET.Element, outer: str, inner: str) -> int | None:
    o = child(el, outer)
    i = None if o is None else child(o, inner)
    return None if i is None or i.text is None else int(i.text)


def micros(el: ET.Element, outer: str) -> int | None:
    o = child(el, outer)
    i = None if o is None else child(o, "Microseconds")
    if i is None or i.text is None:
        return None
    stamp = datetime.fromisoformat(i.text.replace("Z", "+00:00"))
    return int(stamp.timestamp()) * 1_000_000 + stamp.microsecond


def tag_from_xml(el: ET.Element) -> TagReport:
    epc96 = child(el, "EPC_96")
    if epc96 is not None:
        epc_el = child(epc96, "EPC")
        assert epc_el is not None
        epc, bits = bytes.fromhex(epc_el.text or ""), 96
    else:
        data = child(el, "EPCData")
        epc_el = None if data is None else child(data, "EPC")
        assert epc_el is not None
        epc, bits = bytes.fromhex(epc_el.text or ""), int(epc_el.attrib["Count"])
    return TagReport(
        epc=epc,
        epc_bits=bits,
        rospec_id=number(el, "ROSpecID", "ROSpecID"),
        spec_index=number(el, "SpecIndex", "SpecIndex"),
        inventory_parameter_spec_id=number(
            el, "InventoryParameterSpecID", "InventoryParameterSpecID"
        ),
        antenna_id=number(el, "AntennaID", "AntennaID"),
        peak_rssi_dbm=number(el, "PeakRSSI", "PeakRSSI"),
        channel_index=number(el, "ChannelIndex", "ChannelIndex"),
        first_seen_utc_us=micros(el, "FirstSeenTimestampUTC"),
        last_seen_utc_us=micros(el, "LastSeenTimestampUTC"),
        tag_seen_count=number(el, "TagSeenCount", "TagCount"),
        pc_bits=number(el, "C1G2_PC", "PC_Bits"),
        crc=number(el, "C1G2_CRC", "CRC"),
    )


def dx101_b(testdata: Path) -> tuple[list[frames.Message], list[tuple[int, list[TagReport]]]]:
    root = ET.parse(testdata / "llrp/ltk-dx101/dx101_b.xml").getroot()
    reports = [
        (int(r.attrib["MessageID"]), [tag_from_xml(t) for t in r if local(t) == "TagReportData"])
        for r in root
        if local(r) == "RO_ACCESS_REPORT"
    ]
    stream = (testdata / "llrp/ltk-dx101/dx101_b.bin").read_bytes()
    return frames.split(stream), reports


def test_dx101_b_reports_reencoded_from_xml_are_byte_identical(testdata: Path) -> None:
    messages, reports = dx101_b(testdata)
    assert len(messages) == len(reports) == 24
    sizes = set()
    for msg, (msg_id, report) in zip(messages, reports, strict=True):
        sizes |= {t.bits for t in report}
        mine = frames.encode(M.RO_ACCESS_REPORT, msg_id, tags.report_body(report))
        assert mine == frames.encode(msg.type, msg.id, msg.body), f"RO_ACCESS_REPORT {msg_id}"
    assert {1, 8, 9, 64, 96, 512} <= sizes


def test_dx101_b_reports_decode_to_the_xml_values(testdata: Path) -> None:
    messages, reports = dx101_b(testdata)
    for msg, (msg_id, report) in zip(messages, reports, strict=True):
        assert (msg.type, msg.id, msg.version) == (M.RO_ACCESS_REPORT, msg_id, 1)
        assert tags.decode_report(msg.body) == report


def edgex(testdata: Path, name: str, msg_type: int) -> tuple[frames.Message, dict[str, Any]]:
    """An EdgeX capture (body only) framed with a header, and its JSON."""
    base = testdata / "llrp/edgex-captures" / name
    body = base.with_suffix(".bytes").read_bytes()
    frame = frames.encode(msg_type, 0, body)
    return frames.decode(frame), json.loads(base.with_suffix(".json").read_text())


def edgex_reports(testdata: Path) -> list[str]:
    folder = testdata / "llrp/edgex-captures/roAccessReports"
    return sorted(f"roAccessReports/{p.stem}" for p in folder.glob("*.bytes"))


def test_edgex_ro_access_reports_decode_to_their_json(testdata: Path) -> None:
    names = edgex_reports(testdata)
    assert len(names) == 9
    for name in names:
        msg, want = edgex(testdata, name, M.RO_ACCESS_REPORT)
        got = tags.decode_report(msg.body)
        assert len(got) == len(want["TagReportData"]), name
        for tag, w in zip(got, want["TagReportData"], strict=True):
            epc = w["EPC96"]["EPC"] if w["EPC96"] else w["EPCData"]["EPC"]
            assert tag.epc == base64.b64decode(epc), name
            assert tag.antenna_id == w["AntennaID"]
            assert tag.peak_rssi_dbm == w["PeakRSSI"]
            assert tag.first_seen_utc_us == w["FirstSeenUTC"]
            assert tag.last_seen_utc_us == w["LastSeenUTC"]
            assert tag.tag_seen_count == w["TagSeenCount"]
        assert tags.report_body(got) == msg.body, f"{name}: re-encoded differently"


def test_edgex_reader_event_notification_decodes_and_reencodes(testdata: Path) -> None:
    msg, want = edgex(testdata, "ReaderEventNotification-000", M.READER_EVENT_NOTIFICATION)
    note = events.decode(msg.body)
    data = want["ReaderEventNotificationData"]
    assert note.utc_us == data["UTCTimestamp"]
    assert set(note.events) == {
        k for k, v in data.items() if v is not None and k != "UTCTimestamp"
    } - {"Uptime"}
    assert events.connection_close(data["UTCTimestamp"]) == msg.body


def test_edgex_close_connection_response_status(testdata: Path) -> None:
    msg, want = edgex(testdata, "CloseConnectionResponse-000", M.CLOSE_CONNECTION_RESPONSE)
    param = first(list(iter_params(msg.body)), P.LLRPStatus)
    assert param is not None
    got = status.decode(param.body)
    assert (got.code, got.description) == (want["LLRPStatus"]["Status"], "")
    assert status.encode(got) == msg.body


def test_capabilities_encoder_gives_a_real_r420s_bytes(testdata: Path) -> None:
    msg, want = edgex(testdata, "GetReaderCapabilitiesResponse-000", 11)
    model = ReaderModel("capture", want, {})
    assert status.encode(status.OK) + capabilities.encode(model, 0) == msg.body


def test_config_encoder_gives_a_real_r420s_bytes(testdata: Path) -> None:
    msg, want = edgex(testdata, "GetReaderConfigResponse-000", 12)
    model = ReaderModel("capture", load("impinj-r420").capabilities, want)
    cfg = config.factory(model, wired=False)
    assert status.encode(status.OK) + config.encode(cfg, model, 0, 0) == msg.body


def llrp_rs(testdata: Path, name: str) -> frames.Message:
    return frames.decode((testdata / "llrp/llrp-rs" / name).read_bytes())


def test_llrp_rs_field_error_response_is_what_our_encoder_writes(testdata: Path) -> None:
    msg = llrp_rs(testdata, "delete_accessspec_response_field_error.bin")
    st = Status(
        Code.M_FieldError, "LLRP [409] : //AccessSpecID : invalid", FieldError(1, Code.A_Invalid)
    )
    assert frames.encode(M.DELETE_ACCESSSPEC_RESPONSE, 9, status.encode(st)) == frames.encode(
        msg.type, msg.id, msg.body
    )
    param = first(list(iter_params(msg.body)), P.LLRPStatus)
    assert param is not None
    assert status.decode(param.body) == st


def test_llrp_rs_connection_event_is_what_our_encoder_writes(testdata: Path) -> None:
    raw = (testdata / "llrp/llrp-rs/reader_event_notification_conn_success.bin").read_bytes()
    body = events.connection_attempt(1557458516414125, events.ConnectionAttempt.Success)
    assert frames.encode(M.READER_EVENT_NOTIFICATION, 989540519, body) == raw


@pytest.mark.parametrize(
    ("name", "msg_type", "msg_id", "field"),
    [
        ("enable_events_and_reports.bin", 64, 8, None),
        ("delete_accessspec_431.bin", 41, 9, 431),
        ("delete_rospec_1.bin", 21, 11, 1),
    ],
)
def test_llrp_rs_client_messages_decode(
    testdata: Path, name: str, msg_type: int, msg_id: int, field: int | None
) -> None:
    msg = llrp_rs(testdata, name)
    assert (msg.version, msg.type, msg.id) == (1, msg_type, msg_id)
    assert (int.from_bytes(msg.body) if msg.body else None) == field


def test_llrp_rs_add_rospec_decodes(testdata: Path) -> None:
    msg = llrp_rs(testdata, "add_rospec_1.bin")
    assert (msg.type, msg.id) == (20, 15)
    param = first(list(iter_params(msg.body)), P.ROSpec)
    assert param is not None
    spec = rospec.decode(param.body, antennas_max=4, priority_max=7)
    assert (spec.id, spec.priority, spec.state) == (1, 0, rospec.State.Disabled)


def text(el: ET.Element, name: str) -> str:
    found = child(el, name)
    assert found is not None, name
    assert found.text is not None, name
    return found.text


@pytest.mark.parametrize(("name", "inventory_spec_id"), [("ADD_ROSPEC", 9), ("ADD_ROSPEC2", 1)])
def test_ltkjava_add_rospec_decodes_to_its_xml(
    testdata: Path, name: str, inventory_spec_id: int
) -> None:
    folder = testdata / "llrp/ltkjava"
    msg = frames.decode((folder / f"{name}.bin").read_bytes())
    spec_el = child(ET.parse(folder / f"{name}.xml").getroot(), "ROSpec")
    assert spec_el is not None
    param = first(list(iter_params(msg.body)), P.ROSpec)
    assert param is not None
    spec = rospec.decode(param.body, antennas_max=4, priority_max=7)
    assert (spec.id, spec.priority) == (
        int(text(spec_el, "ROSpecID")),
        int(text(spec_el, "Priority")),
    )
    ai_el = child(spec_el, "AISpec")
    assert ai_el is not None
    ids = [int(a) for a in text(ai_el, "AntennaIDs").split()]
    assert spec.ai_specs[0].antennas == (() if 0 in ids else tuple(ids))
    assert spec.ai_specs[0].inventory_parameter_spec_id == inventory_spec_id
    report_el = child(spec_el, "ROReportSpec")
    assert (spec.report is None) == (report_el is None)
    if spec.report is not None and report_el is not None:
        assert spec.report.n == int(text(report_el, "N"))


def test_dx101_e_vendor_custom_notifications_decode_without_error(testdata: Path) -> None:
    stream = (testdata / "llrp/ltk-dx101/dx101_e.bin").read_bytes()
    notes = [m for m in frames.split(stream) if m.type == M.READER_EVENT_NOTIFICATION]
    decoded = [events.decode(m.body) for m in notes]
    assert len(decoded) > 73
    assert any(k.startswith("custom:") for n in decoded for k in n.events)
