"""Shelves in scenarios: lanes, what a shelf sees of picks and put-aways, misplaced items that
are flagged, disturbances and device faults, validation errors, and the ledger check."""

from importlib import resources
from pathlib import Path

import pytest

from simulators.ground_truth import Balance, FlaggedMove
from simulators.ledger_check import differences
from simulators.plan import Plan, build, shelf_faults, shelf_world
from simulators.scenario import ScenarioError
from simulators.shelf.faults import ShelfFault
from simulators.shelf.lanes import CellSpec, Foreign, HandRest, Knock, Pieces
from simulators.shelf.noise import ShelfNoise

BOLT, NUT, TIN = "04012345001013", "04012345001020", "04012345001044"
PROFILE = """
kind = "weighing-transmitter"
name = "two-channel"
vendor = "test"
model = "T2"
transports = ["rtu", "tcp"]
channels = 2
channel_stride = 10
weight = { address = 0, type = "INT32" }
"""
HEAD = """
site = "shelfy"
[[items]]
sku = "BOLT"
gtin = "04012345001013"
unit_weight_g = 48.5
[[items]]
sku = "NUT"
gtin = "04012345001020"
unit_weight_g = 12.0
piece_weight_cv = 0.02
[[items]]
sku = "TIN"
gtin = "04012345001044"
unit_weight_g = 1200.0
[[locations]]
code = "DOCK"
kind = "dock"
[[locations]]
code = "L1"
kind = "shelf"
[[locations]]
code = "L2"
kind = "shelf"
[[locations]]
code = "L3"
kind = "shelf"
[[locations]]
code = "S9"
kind = "shelf"
[[scanners]]
id = "s1"
home = "DOCK"
[[shelves]]
id = "shelf"
profile = "PROFILE"
transport = "rtu"
noise = ["sensor", "transients"]
noise_scale = 2.0
seed = 5
lanes = [
  { location = "L1", sku = "BOLT", unit = 1, restock_from = "DOCK" },
  { location = "L2", sku = "NUT", unit = 1, channel = 2, restock_from = "DOCK" },
  { location = "L3", sku = "TIN", cells = [
      { unit = 2, channel = 1, share = 0.6 }, { unit = 2, channel = 2, share = 0.4 }] },
]
"""
# By hand: BOLT DOCK 30 -10 = 20, L1 10 -3 = 7; NUT DOCK 40 -20 -2 = 18, L2 20 -2 = 18;
# TIN L3 +2 = 2; two nuts put away into the bolt lane (24 g = 0.49 bolts, flagged): L1 NUT 2.
EVENTS = """
[[events]]
at = 0
kind = "delivery"
by = "s1"
to = "DOCK"
lines = [{ sku = "BOLT", qty = 30 }, { sku = "NUT", qty = 40 }]
[[events]]
at = 3
kind = "putaway"
by = "shelf"
from = "DOCK"
to = "L1"
lines = [{ sku = "BOLT", qty = 10 }]
[[events]]
at = 4
kind = "putaway"
by = "shelf"
from = "DOCK"
to = "L2"
lines = [{ sku = "NUT", qty = 20 }]
[[events]]
at = 5
kind = "return"
by = "shelf"
to = "L3"
lines = [{ sku = "TIN", qty = 2 }]
[[events]]
at = 7
kind = "pick"
by = "shelf"
from = "L1"
lines = [{ sku = "BOLT", qty = 3 }]
[[events]]
at = 8
kind = "hand-rest"
by = "shelf"
location = "L2"
grams = 900.0
for_s = 2.0
[[events]]
at = 9
kind = "knock"
by = "shelf"
location = "L3"
[[events]]
at = 10
kind = "shelf-fault"
by = "shelf"
fault = "exception"
unit = 2
for_s = 3.0
exception_code = 4
[[events]]
at = 11
kind = "pick"
by = "shelf"
from = "L2"
lines = [{ sku = "NUT", qty = 2 }]
[[events]]
at = 12
kind = "putaway"
by = "shelf"
from = "DOCK"
to = "L1"
lines = [{ sku = "NUT", qty = 2 }]
"""


ONE_BOLT = 'lines = [{ sku = "BOLT", qty = 1 }]'


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "two-channel.toml"
    path.write_text(PROFILE, encoding="utf-8")
    return path


def plan_of(tmp_path: Path, profile: Path, text: str) -> Plan:
    path = tmp_path / "scenario.toml"
    path.write_text(text.replace('"PROFILE"', f'"{profile}"'), encoding="utf-8")
    return build(path)


def shipped(name: str) -> Plan:
    return build(Path(str(resources.files("simulators") / "scenarios" / name)))


def test_a_shelf_by_hand(tmp_path: Path, profile: Path) -> None:
    plan = plan_of(tmp_path, profile, HEAD + EVENTS)
    assert set(plan.truth) == {
        Balance("BOLT", BOLT, "DOCK", None, 20),
        Balance("BOLT", BOLT, "L1", None, 7),
        Balance("NUT", NUT, "L1", None, 2),
        Balance("NUT", NUT, "DOCK", None, 18),
        Balance("NUT", NUT, "L2", None, 18),
        Balance("TIN", TIN, "L3", None, 2),
    }
    assert plan.flagged == (FlaggedMove("NUT", "DOCK", "L1", 2),)
    run = plan.shelves["shelf"]
    assert run.changes == (
        Pieces(3.0, "L1", 10),
        Pieces(4.0, "L2", 20),
        Pieces(5.0, "L3", 2),
        Pieces(7.0, "L1", -3),
        HandRest(8.0, "L2", 900.0, 2.0),
        Knock(9.0, "L3"),
        Pieces(11.0, "L2", -2),
        Foreign(12.0, "L1", 2, 12.0, 0.02, "NUT"),
    )
    assert shelf_faults(plan, "shelf") == (ShelfFault(10.0, "exception", 2, 3.0, 0, 4),)
    assert (run.profile, run.transport, run.seed, run.units) == (str(profile), "rtu", 5, (1, 2))
    assert run.noise == ShelfNoise(scale=2.0).only(("sensor", "transients"))
    (tin,) = (lane for lane in run.lanes if lane.id == "L3")
    assert tin.cells == (CellSpec(2, 1, 0.6), CellSpec(2, 2, 0.4))
    assert (tin.unit_weight_g, tin.location, tin.initial_pieces) == (1200.0, "L3", 0)
    assert [lane.piece_cv for lane in run.lanes] == [0.01, 0.02, 0.01]
    assert plan.duration_s >= 14.0
    assert all(s.at_s < 3.0 for s in plan.scans["s1"])  # the shelf's events are nobody's reads


def test_the_shelf_world_weighs_the_ground_truth(tmp_path: Path, profile: Path) -> None:
    plan = plan_of(tmp_path, profile, HEAD + EVENTS)
    world = shelf_world(plan, "shelf")
    assert world.cells() == [(1, 1), (1, 2), (2, 1), (2, 2)]
    end = plan.duration_s + 1.0
    bolts = world.lane_samples("L1", [end])[0]
    assert bolts[1] == pytest.approx(7 * 48.5 + 24.0, abs=8.0)  # the misplaced nuts weigh too
    assert bolts[2]
    nuts = world.lane_samples("L2", [end])[0][1]
    assert nuts == pytest.approx(18 * 12.0, abs=8.0)  # 1 % CV, 1 g noise
    tins = sum(world.reading(2, ch, end).grams for ch in (1, 2))
    assert tins == pytest.approx(2400.0, abs=50.0)
    with pytest.raises(ScenarioError, match="no shelf 'nope'"):
        shelf_world(plan, "nope")


def test_a_flagged_move_is_expected_missing_from_the_ledger(tmp_path: Path, profile: Path) -> None:
    plan = plan_of(tmp_path, profile, HEAD + EVENTS)
    gtins = {i.sku: i.gtin for i in plan.scenario.items}
    ledger = [
        {"sku": b.sku, "gtin": b.gtin, "location": b.location, "lot": b.lot, "qty": b.qty}
        for b in plan.truth
        if (b.sku, b.location) != ("NUT", "L1")
    ]
    for line in ledger:
        if (line["sku"], line["location"]) == ("NUT", "DOCK"):
            line["qty"] = 20  # the nuts never left the dock in the book
    ledger.append({"sku": "NUT", "location": "@review", "virtual": True, "lot": None, "qty": 2})
    assert differences(plan.truth, ledger, gtins, plan.flagged) == []
    assert differences(plan.truth, ledger, gtins) == [
        "DOCK NUT lot -: ledger 20, ground truth 18",
        "L1 NUT lot -: ledger 0, ground truth 2",
    ]
    returned = FlaggedMove("TIN", None, "L2", 1)
    truth = [Balance("TIN", TIN, "L2", None, 1)]
    assert differences(truth, [], gtins, [returned]) == []


def test_a_misplaced_return_is_flagged_from_outside(tmp_path: Path, profile: Path) -> None:
    extra = '[[events]]\nat = 14\nkind = "return"\nby = "shelf"\nto = "L3"\n'
    extra += 'lines = [{ sku = "NUT", qty = 30 }]\n'  # 360 g = 0.3 tins
    plan = plan_of(tmp_path, profile, HEAD + EVENTS + extra)
    assert plan.flagged[-1] == FlaggedMove("NUT", None, "L3", 30)
    assert plan.shelves["shelf"].changes[-1] == Foreign(14.0, "L3", 30, 12.0, 0.02, "NUT")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('sku = "BOLT", unit = 1', 'sku = "BOLTX", unit = 1'), "shelves.0.lanes.0.sku: unknown"),
        (('location = "L1"', 'location = "DOCK"'), "lanes.0.location: 'DOCK' is a dock"),
        (('location = "L2"', 'location = "L1"'), "lanes.1.location: 'L1' is already a lane"),
        (('location = "L1"', 'location = "L7"'), "lanes.0.location: unknown location 'L7'"),
        (("unit_weight_g = 12.0", "company_prefix_digits = 7"), "item 'NUT' has no unit_weight_g"),
        (
            (
                'restock_from = "DOCK" },\n  { location = "L2"',
                'restock_from = "L1" },\n  { location = "L2"',
            ),
            "restock_from: a lane does not restock from itself",
        ),
        (("channel = 2", "channel = 3"), "channel 3, but"),
        (("channel = 2", "channel = 1"), "lanes.1: unit 1 channel 1 is under another lane"),
        (("share = 0.4", "share = 0.3"), "lanes.2.cells: shares must sum to 1"),
        (("cells = [", "unit = 3, cells = ["), "lanes.2: give either unit"),
        (
            ('profile = "PROFILE"', 'profile = "nope"'),
            "shelves.0.profile: no profile named 'nope'; known: baykon-mx08, generic-rs485-4ch,",
        ),
        (('id = "shelf"', 'id = "s1"'), "shelves.0.id: 's1' is also a scanner"),
        (('to = "L1"', 'to = "L3"'), "events.1.from: lane 'L3' restocks from None"),
        (
            (
                'kind = "return"\nby = "shelf"\nto = "L3"',
                'kind = "return"\nby = "shelf"\nto = "L1"',
            ),
            "events.3: lane 'L1' restocks from 'DOCK'",
        ),
        (
            (
                'from = "L1"\nlines = [{ sku = "BOLT", qty = 3 }]',
                'from = "L1"\nlines = [{ sku = "NUT", qty = 3 }]',
            ),
            "events.4.lines.0.sku: the lane holds 'BOLT'",
        ),
        (('from = "L1"', 'from = "S9"'), "events.4.from: 'S9' is not a lane of shelf"),
        (("qty = 3 }]", 'qty = 3, lot = "X" }]'), "events.4.lines.0: weight carries no lot"),
        (
            ('location = "L2"\ngrams', 'location = "S9"\ngrams'),
            "events.5.location: 'S9' is not a lane",
        ),
        (
            ('kind = "knock"\nby = "shelf"', 'kind = "knock"\nby = "s1"'),
            "events.6.by: unknown shelf 's1'",
        ),
        (("unit = 2\nfor_s", "unit = 7\nfor_s"), "events.7.unit: shelf 'shelf' has no device 7"),
        (
            ('fault = "exception"', 'fault = "melted"'),
            "events.7.shelf-fault.fault: Input should be 'slow'",
        ),
        (
            ('L1"\nlines = [{ sku = "NUT", qty = 2 }]', 'L1"\nlines = [{ sku = "NUT", qty = 4 }]'),
            "events.9.lines.0: 4 x NUT weigh 0.99 units of BOLT",
        ),
    ],
)
def test_bad_shelves_name_the_field(
    tmp_path: Path, profile: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    text = HEAD + EVENTS
    assert old in text
    with pytest.raises(ScenarioError) as err:
        plan_of(tmp_path, profile, text.replace(old, new, 1))
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "event",
    [
        'kind = "putaway"\nby = "s1"\nfrom = "DOCK"\nto = "L1"\n' + ONE_BOLT,
        'kind = "count"\nby = "s1"\nlocation = "L2"',
        'kind = "shrink"\nlocation = "L1"\n' + ONE_BOLT,
        'kind = "transfer"\nby = "s1"\nfrom = "L1"\nto = "DOCK"\n' + ONE_BOLT,
    ],
)
def test_only_its_shelf_touches_a_lane(tmp_path: Path, profile: Path, event: str) -> None:
    text = HEAD + EVENTS + f"[[events]]\nat = 20\n{event}\n"
    with pytest.raises(ScenarioError, match=r"events\.10: touches shelf lane 'L"):
        plan_of(tmp_path, profile, text)


def test_a_shelf_sees_only_picks_putaways_and_returns(tmp_path: Path, profile: Path) -> None:
    event = 'kind = "shipment"\nby = "shelf"\nfrom = "DOCK"\n' + ONE_BOLT
    with pytest.raises(ScenarioError, match=r"events\.10\.by: 'shelf' is a shelf"):
        plan_of(tmp_path, profile, HEAD + EVENTS + f"[[events]]\nat = 20\n{event}\n")


def test_shelf_scenario_shows_every_shelf_event() -> None:
    plan = shipped("shelf.toml")
    kinds = {e.kind for e in plan.scenario.events if getattr(e, "by", "") == "shelf-a10"}
    assert kinds == {"putaway", "return", "pick", "hand-rest", "knock", "shelf-fault"}
    assert [m.sku for m in plan.flagged] == ["GLUE-250"]
    (fault,) = shelf_faults(plan, "shelf-a10")
    assert (fault.kind, fault.unit, fault.for_s) == ("absent", 2, 4.0)
    picks = [c.delta for c in plan.shelves["shelf-a10"].changes if isinstance(c, Pieces)]
    assert {-1, -2, -5} <= set(picks)
    assert 20.0 <= plan.duration_s <= 30.0
    world = shelf_world(plan, "shelf-a10")
    truth = {(b.sku, b.location): b.qty for b in plan.truth}
    weights = {i.sku: i.unit_weight_g or 0.0 for i in plan.scenario.items}
    for lane in plan.shelves["shelf-a10"].lanes:
        expected = sum(q * weights[sku] for (sku, loc), q in truth.items() if loc == lane.id)
        _, grams, stable = world.lane_samples(lane.id, [plan.duration_s + 1.0])[0]
        assert grams == pytest.approx(expected, rel=0.02, abs=5.0), lane.id
        assert stable


def test_small_site_has_a_small_shelf_without_misplaced_items() -> None:
    plan = shipped("small-site.toml")
    (run,) = plan.shelves.values()
    assert 2 <= len(run.lanes) <= 3
    assert plan.flagged == ()
    assert any(isinstance(c, Pieces) and c.delta > 0 for c in run.changes)
    assert any(isinstance(c, Pieces) and c.delta < 0 for c in run.changes)
    assert plan.duration_s <= 25
