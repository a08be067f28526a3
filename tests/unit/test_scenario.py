"""The scenario engine: ground truth by hand, what each event kind is scanned as, noise, errors."""

import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from edge_agent.readings import Scan
from edge_agent.recognizers.base import TxnDraft
from edge_agent.recognizers.scan import ScanRecognizer
from simulators.barcodes import GS, gtin_ok
from simulators.ground_truth import Balance
from simulators.plan import REPEAT_GAP_MIN_S, Plan, TimedScan, build
from simulators.scanner import wire_for
from simulators.scenario import ScenarioError
from stockwire.txn import TxnKind

HEAD = """
site = "tiny"
scan_interval_s = 0.5
[[items]]
sku = "A"
gtin = "04006381333931"
label = "gs1"
[[items]]
sku = "B"
gtin = "05901234123457"
label = "ean13"
[[locations]]
code = "DOCK"
kind = "dock"
[[locations]]
code = "S1"
kind = "shelf"
[[locations]]
code = "S2"
kind = "shelf"
[[scanners]]
id = "s1"
home = "DOCK"
"""

# One event of every kind. By hand:
#   A/L1: DOCK 10 -6 (putaway) -1 (adjust out) = 3;  S1 6 -2 (transfer) -1 (shrink) = 3;
#         S2 2 -1 (pick) = 1
#   B:    DOCK 5 -2 (shipment) = 3;  S1 +1 (return) = 1;  S2 +3 (adjust in) = 3
EVENTS = """
[[events]]
at = 0
kind = "delivery"
by = "s1"
to = "DOCK"
lines = [{ sku = "A", qty = 10, lot = "L1", expiry = 2027-03-31 }, { sku = "B", qty = 5 }]
[[events]]
at = 5
kind = "putaway"
by = "s1"
from = "DOCK"
to = "S1"
lines = [{ sku = "A", qty = 6, lot = "L1" }]
[[events]]
at = 10
kind = "transfer"
by = "s1"
from = "S1"
to = "S2"
lines = [{ sku = "A", qty = 2, lot = "L1" }]
[[events]]
at = 15
kind = "pick"
by = "s1"
from = "S2"
lines = [{ sku = "A", qty = 1, lot = "L1" }]
[[events]]
at = 20
kind = "shipment"
by = "s1"
from = "DOCK"
lines = [{ sku = "B", qty = 2 }]
[[events]]
at = 25
kind = "return"
by = "s1"
to = "S1"
lines = [{ sku = "B", qty = 1 }]
[[events]]
at = 30
kind = "adjustment"
direction = "in"
by = "s1"
location = "S2"
lines = [{ sku = "B", qty = 3 }]
[[events]]
at = 35
kind = "adjustment"
direction = "out"
by = "s1"
location = "DOCK"
lines = [{ sku = "A", qty = 1, lot = "L1" }]
[[events]]
at = 40
kind = "shrink"
location = "S1"
lines = [{ sku = "A", qty = 1, lot = "L1" }]
[[events]]
at = 45
kind = "count"
by = "s1"
location = "S1"
"""

TRUTH = {
    Balance("A", "04006381333931", "DOCK", "L1", 3),
    Balance("A", "04006381333931", "S1", "L1", 3),
    Balance("A", "04006381333931", "S2", "L1", 1),
    Balance("B", "05901234123457", "DOCK", None, 3),
    Balance("B", "05901234123457", "S1", None, 1),
    Balance("B", "05901234123457", "S2", None, 3),
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
A_L1 = f"010400638133393110L1{GS}17270331"


def plan_of(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return build(path)


def texts(scans: tuple[TimedScan, ...], aim: bool = False) -> list[str]:
    return [s.barcode.render(aim) for s in scans]


def test_ground_truth_by_hand(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, HEAD + EVENTS)
    assert set(plan.truth) == TRUTH


def test_each_event_kind_is_scanned_with_the_command_language(tmp_path: Path) -> None:
    scans = texts(plan_of(tmp_path, HEAD + EVENTS).scans["s1"])
    assert scans == [
        *["SW:MODE:RECEIVE", "SW:LOC:DOCK", "SW:QTY:10", A_L1, "SW:QTY:5", "5901234123457"],
        *["SW:MODE:PUTAWAY", "SW:LOC:DOCK", "SW:TO:S1", "SW:QTY:6", A_L1],
        *["SW:MODE:TRANSFER", "SW:LOC:S1", "SW:TO:S2", "SW:QTY:2", A_L1],
        *["SW:MODE:PICK", "SW:LOC:S2", A_L1],
        *["SW:MODE:SHIP", "SW:LOC:DOCK", "SW:QTY:2", "5901234123457"],
        *["SW:MODE:RETURN", "SW:LOC:S1", "5901234123457"],
        *["SW:MODE:ADJUST-IN", "SW:LOC:S2", "SW:QTY:3", "5901234123457"],
        *["SW:MODE:ADJUST-OUT", "SW:LOC:DOCK", A_L1],
        # The count sees what is physically there after the shrink: 3 of A/L1, 1 of B.
        *["SW:MODE:COUNT", "SW:LOC:S1", "SW:QTY:3", A_L1, "SW:QTY:1", "5901234123457"],
        "SW:END",
    ]


def test_aim_profile_prefixes_symbology_ids(tmp_path: Path) -> None:
    scans = texts(plan_of(tmp_path, HEAD + EVENTS).scans["s1"], aim=True)
    assert scans[:6] == [
        "]C0SW:MODE:RECEIVE",
        "]C0SW:LOC:DOCK",
        "]C0SW:QTY:10",
        f"]C1{A_L1}",
        "]C0SW:QTY:5",
        "]E05901234123457",
    ]


def test_ean13_item_with_lot_gets_a_lot_label_first(tmp_path: Path) -> None:
    text = HEAD + EVENTS.replace('{ sku = "B", qty = 5 }', '{ sku = "B", qty = 5, lot = "X9" }')
    text = text.replace('{ sku = "B", qty = 2 }', '{ sku = "B", qty = 2, lot = "X9" }')
    text = text.replace('{ sku = "B", qty = 1 }', '{ sku = "B", qty = 1, lot = "X9" }')
    text = text.replace('{ sku = "B", qty = 3 }', '{ sku = "B", qty = 3, lot = "X9" }')
    plan = plan_of(tmp_path, text)
    assert texts(plan.scans["s1"])[4:7] == ["SW:LOT:X9", "SW:QTY:5", "5901234123457"]
    assert Balance("B", "05901234123457", "S2", "X9", 3) in plan.truth


def test_noise_does_not_change_ground_truth_and_is_only_extra_reads(tmp_path: Path) -> None:
    clean = plan_of(tmp_path, HEAD + EVENTS)
    noisy_text = (HEAD + EVENTS).replace(
        'by = "s1"', 'by = "s1"\nnoise = ["double-scan", "garbage"]'
    )
    noisy = plan_of(tmp_path, noisy_text)
    assert noisy.truth == clean.truth
    noise = [s for s in noisy.scans["s1"] if s.noise]
    assert len(noise) == 3 * 9  # per scanned event: one double read, two garbage reads
    assert texts(tuple(s for s in noisy.scans["s1"] if not s.noise)) == texts(clean.scans["s1"])


def test_double_scan_is_inside_and_legit_repeats_outside_the_duplicate_window(
    tmp_path: Path,
) -> None:
    window_s = (
        tomllib.loads(
            (
                resources.files("device_profiles") / "profiles" / "generic-tcp-scanner.toml"
            ).read_text()
        )["duplicate_window_ms"]
        / 1000
    )
    text = (HEAD + EVENTS).replace('by = "s1"', 'by = "s1"\nnoise = ["double-scan"]')
    scans = plan_of(tmp_path, text).scans["s1"]
    last: dict[str, float] = {}
    for scan in scans:
        raw = scan.barcode.render(False)
        if scan.noise:
            assert scan.at_s - last[raw] < window_s
        elif raw in last:
            assert scan.at_s - last[raw] >= REPEAT_GAP_MIN_S > window_s
        last[raw] = scan.at_s
    assert any(s.noise for s in scans)


def test_garbage_reads_are_invalid_barcodes(tmp_path: Path) -> None:
    text = (HEAD + EVENTS).replace('by = "s1"', 'by = "s1"\nnoise = ["garbage"]', 1)
    scans = plan_of(tmp_path, text).scans["s1"]
    garbage = [s.barcode.data for s in scans if s.noise]
    assert len(garbage[0]) == 13
    assert garbage[0].isdigit()
    assert not gtin_ok(garbage[0])
    assert not garbage[1][0].isalnum()


def test_reads_of_one_person_are_in_time_order(tmp_path: Path) -> None:
    scans = plan_of(tmp_path, HEAD + EVENTS).scans["s1"]
    times = [s.at_s for s in scans]
    assert times == sorted(times)
    assert times[0] == 0.0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('qty = 6, lot = "L1"', 'qty = 0, lot = "L1"'), "events.1.putaway.lines.0.qty"),
        (('sku = "B", qty = 2', 'sku = "NOPE", qty = 2'), "events.4.lines.0.sku: unknown item"),
        (('to = "S1"', 'to = "S9"'), "events.1.to: unknown location 'S9'"),
        (('kind = "pick"', 'kind = "teleport"'), "events.3"),
        (('gtin = "04006381333931"', 'gtin = "04006381333932"'), "items.0.gtin"),
        (('qty = 2, lot = "L1"', 'qty = 7, lot = "L1"'), "events.2.lines.0: takes 7 x A lot L1"),
        (("at = 45", "at = 39"), "events.8: shrink at S1 is never counted"),
        (
            ('{ sku = "B", qty = 5 }', '{ sku = "A", qty = 5, lot = "L1" }'),
            "events.0.lines.1: same",
        ),
    ],
)
def test_bad_scenario_names_file_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in EVENTS or old in HEAD
    text = (HEAD + EVENTS).replace(old, new, 1)
    with pytest.raises(ScenarioError) as err:
        plan_of(tmp_path, text)
    assert str(tmp_path / "scenario.toml") in str(err.value)
    assert expected in str(err.value)


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"scenario\.toml: not valid TOML"):
        plan_of(tmp_path, "site = [")


def test_count_too_close_to_another_persons_work_is_refused(tmp_path: Path) -> None:
    text = HEAD + '[[scanners]]\nid = "s2"\nhome = "S1"\n' + EVENTS
    text = text.replace(
        'at = 25\nkind = "return"\nby = "s1"', 'at = 44\nkind = "return"\nby = "s2"'
    )
    with pytest.raises(ScenarioError, match=r"events\.9: the count at S1 is within"):
        plan_of(tmp_path, text)


def small_site() -> Path:
    return Path(str(resources.files("simulators") / "scenarios" / "small-site.toml"))


def test_small_site_covers_every_kind_and_finishes_in_about_20_s() -> None:
    plan = build(small_site())
    kinds = Counter(e.kind for e in plan.scenario.events)
    assert set(kinds) == {
        "delivery", "putaway", "transfer", "pick", "shipment", "return", "adjustment", "count",
        "shrink", "backout", "hand-rest",
    }  # fmt: skip
    assert {e.direction for e in plan.scenario.events if e.kind == "adjustment"} == {"in", "out"}
    assert 40 <= len(plan.scenario.events) <= 80
    assert plan.duration_s <= 25
    reads = [s for scans in plan.scans.values() for s in scans]
    assert {s.barcode.symbology for s in reads if not s.noise} == {"C0", "C1", "E0"}
    assert any(GS in s.barcode.data for s in reads)
    noise = {s.barcode.symbology for s in reads if s.noise}
    assert {"E0", "C0"} <= noise  # garbage reads
    assert any(s.noise and s.barcode.symbology == "C1" for s in reads)  # a double read
    assert all(b.qty > 0 for b in plan.truth)
    for actor in plan.scenario.scanners:
        assert wire_for(actor.profile).terminator == "\r\n"


def book_after(plan: Plan) -> tuple[dict[tuple[str, str, str | None], int], Counter[str]]:
    """Feed each scanner's reads through the edge's real ScanRecognizer (no I/O), then post the
    drafts, in time order, to a minimal book with the ledger's rules."""
    drafts: list[TxnDraft] = []
    tally: Counter[str] = Counter()
    for actor in plan.scenario.scanners:
        profile = wire_for(actor.profile)
        recognizer = ScanRecognizer(actor.id, profile, lambda: T0, actor.home)
        for scan in plan.scans[actor.id]:
            raw = scan.barcode.render(profile.symbology_ids)
            at = T0 + timedelta(seconds=scan.at_s)
            for out in recognizer.feed(Scan(device=actor.id, raw=raw, at=at)):
                assert isinstance(out, TxnDraft) != scan.noise, (raw, out)
                if isinstance(out, TxnDraft):
                    drafts.append(out)
        tally["rejected"] += recognizer.counters.rejected
        tally["duplicates"] += recognizer.counters.duplicates
    book: Counter[tuple[str, str, str | None]] = Counter()
    for d in sorted(drafts, key=lambda d: d.occurred_at):
        assert d.gtin is not None
        if d.kind is TxnKind.COUNT:
            assert d.to_location is not None
            book[(d.gtin, d.to_location, d.lot)] = d.qty
            continue
        if d.from_location is not None:
            book[(d.gtin, d.from_location, d.lot)] -= d.qty
        if d.to_location is not None:
            book[(d.gtin, d.to_location, d.lot)] += d.qty
    physical = {k: v for k, v in book.items() if v and not k[1].startswith("@")}
    return physical, tally


def test_small_site_read_by_the_edge_recognizer_books_the_ground_truth() -> None:
    plan = build(small_site())
    book, tally = book_after(plan)
    doors = {p.door for p in plan.scenario.portals}  # the portals' share is tests/e2e's
    assert doors
    lanes = {lane.location for s in plan.scenario.shelves for lane in s.lanes}  # and shelves'
    assert lanes
    seen = doors | lanes
    truth = {(b.gtin, b.location, b.lot): b.qty for b in plan.truth if b.location not in seen}
    assert book == truth
    noise = Counter(n for e in plan.scenario.events for n in getattr(e, "noise", ()))
    assert tally["rejected"] == 2 * noise["garbage"]
    assert tally["duplicates"] == noise["double-scan"]
