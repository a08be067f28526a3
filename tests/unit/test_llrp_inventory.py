"""Report triggers and folding of the reader's inventory, with time handed in (no sleeping)."""

from simulators.llrp.inventory import Inventory
from simulators.llrp.reportspec import (
    TRIGGER_N_OR_END_OF_AISPEC,
    TRIGGER_N_OR_END_OF_ROSPEC,
    TRIGGER_NONE,
    ContentSelector,
    ReportSpec,
)
from simulators.llrp.rospec import (
    AISpec,
    AIStopTrigger,
    ROSpec,
    StartTrigger,
    State,
    StopTrigger,
    TagTrigger,
    TagTriggerType,
)
from simulators.sightings import Sighting

ALL = ContentSelector(
    rospec_id=True,
    spec_index=True,
    inventory_parameter_spec_id=True,
    antenna_id=True,
    peak_rssi=True,
    first_seen=True,
    last_seen=True,
    tag_seen_count=True,
    crc=True,
    pc_bits=True,
    impinj_phase=True,
    impinj_peak_rssi=True,
)
EPC_A = bytes.fromhex("30340242201d8840009efdf7")
EPC_B = bytes.fromhex("30340242201d8840009efdf8")


def spec(
    ai: AISpec | None = None,
    report: ReportSpec | None = None,
    start: int = StartTrigger.Immediate,
    period_ms: int = 0,
    offset_ms: int = 0,
    stop_trigger: int = StopTrigger.Null,
    duration_ms: int = 0,
) -> ROSpec:
    ai = ai or AISpec(antennas=(1, 2))
    report = report or ReportSpec(TRIGGER_N_OR_END_OF_AISPEC, 0, ALL)
    return ROSpec(
        1, 0, State.Disabled, (ai,), start, period_ms, offset_ms, stop_trigger, duration_ms, report
    )


def n_tags(n: int, timeout_ms: int = 0, kind: int = TagTriggerType.N_Tags) -> AISpec:
    trigger = TagTrigger(kind, n, 0, 0, timeout_ms)
    return AISpec((1, 2), AIStopTrigger.TagObservation, tag_trigger=trigger)


def started(s: ROSpec, impinj: bool = True, now_s: float = 0.0, **kw: int) -> Inventory:
    inv = Inventory(s, ReportSpec(), impinj, now_s, **kw)
    assert inv.tick(now_s) == []
    assert inv.active
    return inv


def seen(epc: bytes, antenna: int = 1, rssi: float = -60.0, phase: float | None = 90.0) -> Sighting:
    return Sighting(0.0, epc, antenna, rssi, phase)


def test_reads_of_a_tag_by_an_antenna_fold_into_one_tag_report() -> None:
    inv = started(spec(n_tags(3)))
    assert inv.sight(seen(EPC_A, rssi=-61.4), 1_000, 0.1) == []
    assert inv.sight(seen(EPC_A, rssi=-50.6, phase=180.0), 2_000, 0.2) == []
    [report] = inv.sight(seen(EPC_A, antenna=2, rssi=-70.0, phase=None), 3_000, 0.3)
    a1, a2 = report
    assert (a1.epc, a1.antenna_id, a1.tag_seen_count, a1.peak_rssi_dbm) == (EPC_A, 1, 2, -51)
    assert (a1.first_seen_utc_us, a1.last_seen_utc_us) == (1_000, 2_000)
    assert (a1.impinj_phase, a1.impinj_peak_rssi_cdbm) == (2048, -5060)
    assert (a1.rospec_id, a1.spec_index, a1.inventory_parameter_spec_id) == (1, 1, 1)
    assert a1.pc_bits == 6 << 11
    assert a1.crc is not None
    assert (a2.antenna_id, a2.tag_seen_count, a2.impinj_phase) == (2, 1, None)


def test_a_non_impinj_reader_sends_no_impinj_fields() -> None:
    inv = started(spec(n_tags(1)), impinj=False)
    [[tag]] = inv.sight(seen(EPC_A), 1, 0.1)
    assert (tag.impinj_phase, tag.impinj_peak_rssi_cdbm) == (None, None)


def test_unique_tag_trigger_waits_for_n_different_tags() -> None:
    inv = started(spec(n_tags(2, kind=TagTriggerType.N_Unique_Tags)))
    assert inv.sight(seen(EPC_A), 1, 0.1) == []
    assert inv.sight(seen(EPC_A, antenna=2), 2, 0.2) == []
    [report] = inv.sight(seen(EPC_B), 3, 0.3)
    assert [t.epc for t in report] == [EPC_A, EPC_A, EPC_B]


def test_tag_observation_timeout_ends_the_aispec_and_reports() -> None:
    inv = started(spec(n_tags(100, timeout_ms=500)))
    assert inv.sight(seen(EPC_A), 1, 0.1) == []
    assert inv.next_deadline_s() == 0.5
    assert inv.tick(0.49) == []
    [report] = inv.tick(0.5)
    assert [t.epc for t in report] == [EPC_A]
    assert inv.next_deadline_s() == 1.0  # the next AISpec run: the ROSpec loops
    assert inv.tick(1.0) == []  # nothing read: no empty report


def test_n_tags_in_report_spec_flushes_without_ending_the_aispec() -> None:
    s = spec(AISpec((1, 2)), ReportSpec(TRIGGER_N_OR_END_OF_ROSPEC, 2, ALL))
    inv = started(s)
    assert inv.sight(seen(EPC_A), 1, 0.1) == []
    [report] = inv.sight(seen(EPC_B), 2, 0.2)
    assert len(report) == 2
    assert inv.next_deadline_s() is None


def test_rospec_duration_stops_it_and_periodic_start_restarts_it() -> None:
    s = spec(
        AISpec((1,), AIStopTrigger.Duration, 250),
        start=StartTrigger.Periodic,
        period_ms=2_000,
        offset_ms=100,
        stop_trigger=StopTrigger.Duration,
        duration_ms=1_000,
    )
    inv = Inventory(s, ReportSpec(), False, 0.0)
    assert not inv.active
    assert inv.next_deadline_s() == 0.1
    inv.tick(0.1)
    assert inv.active
    assert inv.reads(1)
    assert not inv.reads(2)
    inv.sight(seen(EPC_A), 1, 0.2)
    [report] = inv.tick(0.35)  # end of the first 250 ms AISpec
    assert len(report) == 1
    assert inv.tick(0.9) == []  # AISpecs 0.35-0.6 and 0.6-0.85 read nothing
    inv.sight(seen(EPC_B), 2_000, 0.9)
    [last] = inv.tick(1.1)  # the ROSpec's 1 s is up
    assert [t.epc for t in last] == [EPC_B]
    assert not inv.active
    assert inv.next_deadline_s() == 2.1
    inv.tick(2.1)
    assert inv.active
    assert inv.events == [(True, 1), (False, 1), (True, 1)]


def test_report_trigger_none_holds_reports_for_get_report() -> None:
    inv = started(spec(n_tags(1), ReportSpec(TRIGGER_NONE, 0, ALL)))
    assert inv.sight(seen(EPC_A), 1, 0.1) == []
    assert inv.stop(0.2) == []
    [report] = inv.flush()
    assert [t.epc for t in report] == [EPC_A]


def test_a_full_report_buffer_drops_new_tags_and_counts_them() -> None:
    inv = started(spec(n_tags(1000)), report_tags_max=1)
    inv.sight(seen(EPC_A), 1, 0.1)
    inv.sight(seen(EPC_B), 2, 0.2)
    inv.sight(seen(EPC_A), 3, 0.3)
    assert inv.overflow_tags == 1
    [report] = inv.stop(0.4)
    assert [(t.epc, t.tag_seen_count) for t in report] == [(EPC_A, 2)]


def test_null_start_trigger_waits_for_start_rospec() -> None:
    inv = Inventory(spec(start=StartTrigger.Null), ReportSpec(), False, 0.0)
    assert inv.tick(5.0) == []
    assert not inv.active
    inv.start(5.0)
    assert inv.active
    assert inv.reads(2)


def test_no_new_tags_for_t_ms_ends_the_aispec() -> None:
    trigger = TagTrigger(TagTriggerType.No_New_Tags, 0, 0, 300, 0)
    inv = started(spec(AISpec((1, 2), AIStopTrigger.TagObservation, tag_trigger=trigger)))
    inv.sight(seen(EPC_A), 1, 0.1)
    inv.sight(seen(EPC_B), 2, 0.2)
    assert inv.tick(0.4) == []
    inv.sight(seen(EPC_A), 3, 0.45)  # not new: the quiet time still counts from 0.2
    [report] = inv.tick(0.5)
    assert {t.epc for t in report} == {EPC_A, EPC_B}
