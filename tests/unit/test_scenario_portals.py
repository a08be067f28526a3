"""Portals in scenarios: loads crossing doors, tags following units, distractors, faults, errors."""

import statistics
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

import pytest
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC

from simulators.ground_truth import Balance
from simulators.plan import Plan, build
from simulators.portal.noise import NoiseLevel
from simulators.portal.scenario_run import PortalFault, scenario_noise
from simulators.portal.truth import TruePass
from simulators.scenario import PortalActor, ScenarioError
from simulators.sightings import Sighting

JUICE, COFFEE, MUG = "04006381333931", "05901234123457", "05012345678900"


def dock_door() -> Path:
    return Path(str(resources.files("simulators") / "scenarios" / "dock-door.toml"))


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build(dock_door())


def _by_epc(sightings: tuple[Sighting, ...]) -> dict[str, list[Sighting]]:
    out: dict[str, list[Sighting]] = defaultdict(list)
    for s in sightings:
        out[s.epc.hex().upper()].append(s)
    return out


def _gtin(epc: str) -> str:
    gtin: str = SGTIN.from_hex(epc).gtin()
    return gtin


def _gtins(p: TruePass) -> Counter[str]:
    return Counter(_gtin(e) for e in p.epcs if e.startswith("30"))


# ---- the dock-door scenario ------------------------------------------------------------------


def test_dock_door_passes_are_the_crossing_events(plan: Plan) -> None:
    assert [(p.door, p.direction, p.load) for p in plan.passes] == [
        ("DOCK-3", "in", 0),
        ("DOCK-3", "in", 1),
        ("DOCK-3", "in", 2),
        ("DOCK-3", "out", 4),
    ]
    first, second = plan.passes[1], plan.passes[2]
    assert second.enter_s - first.enter_s == 2.0  # two loads close together
    assert second.enter_s < first.leave_s


@pytest.mark.parametrize(
    ("load", "gtins"),
    [
        (0, {JUICE: 12, COFFEE: 6}),
        (1, {MUG: 8}),
        (2, {COFFEE: 10}),
        (4, {JUICE: 8, MUG: 3}),
    ],
)
def test_pass_epcs_decode_to_the_lines_items_plus_a_pallet(
    plan: Plan, load: int, gtins: dict[str, int]
) -> None:
    (p,) = (p for p in plan.passes if p.load == load)
    assert _gtins(p) == gtins
    pallets = [e for e in p.epcs if e.startswith("31")]
    assert len(pallets) == 1
    assert len(p.epcs) == sum(gtins.values()) + 1
    assert SSCC.from_hex(pallets[0]).epc_uri.startswith("urn:epc:id:sscc:")


def test_a_shipment_ships_the_tags_received_at_that_door(plan: Plan) -> None:
    received = {e for p in plan.passes if p.direction == "in" for e in p.epcs}
    (shipped,) = (p for p in plan.passes if p.direction == "out")
    juice = [e for e in shipped.epcs if e.startswith("30") and _gtin(e) == JUICE]
    mugs = [e for e in shipped.epcs if e.startswith("30") and _gtin(e) == MUG]
    first = next(p for p in plan.passes if p.load == 0)
    # the putaway by scanner took the first 4 juice tags to the shelf; the next 8 ship
    assert juice == [e for e in first.epcs if e.startswith("30") and _gtin(e) == JUICE][4:12]
    assert set(mugs) <= received
    assert len(set(mugs)) == 3


def test_receipts_and_distractors_never_reuse_an_epc(plan: Plan) -> None:
    receipts = [e for p in plan.passes if p.direction == "in" for e in p.epcs]
    others = [e for d in plan.distractors for e in d.epcs]
    assert len(receipts) == len(set(receipts))
    assert not set(receipts) & set(others)
    assert len(others) == len(set(others))


def test_ground_truth_includes_the_portal_moves(plan: Plan) -> None:
    # JUICE 12 in, 4 put away, 8 shipped; COFFEE 6 + 10 in; MUG 8 in, 3 shipped.
    assert set(plan.truth) == {
        Balance("COFFEE-500G", COFFEE, "DOCK-3", None, 16),
        Balance("JUICE-1L", JUICE, "A-01-01", None, 4),
        Balance("MUG-WHITE", MUG, "DOCK-3", None, 5),
    }


def test_distractors_and_faults_are_described(plan: Plan) -> None:
    kinds = Counter(d.kind for d in plan.distractors)
    assert kinds == {"neighbour-traffic": 2, "staged": 1, "backout": 1, "reversal": 1}
    assert {d.at for d in plan.distractors if d.kind == "neighbour-traffic"} == {"DOCK-4"}
    assert plan.faults == {"portal-3": (PortalFault(86.0, "reboot", 5.0),)}
    assert plan.duration_s == 91.0
    assert plan.scenario.portals[0].absent_until_s == 0.0


def test_sightings_are_time_sorted_and_within_their_loads_time(plan: Plan) -> None:
    sightings = plan.sightings["portal-3"]
    assert len(sightings) > 1000
    assert [s.at_s for s in sightings] == sorted(s.at_s for s in sightings)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    loads = [(p.epcs, p.enter_s, p.leave_s) for p in plan.passes]
    loads += [(d.epcs, d.enter_s, d.leave_s) for d in plan.distractors]
    for epcs, enter_s, leave_s in loads:
        for e in epcs:
            spans[e].append((enter_s, leave_s))  # a tag may pass twice (in, then out)
    for s in sightings:
        assert any(a <= s.at_s <= b for a, b in spans[s.epc.hex().upper()])


def test_every_passing_tag_is_read_and_direction_shows(plan: Plan) -> None:
    by = _by_epc(plan.sightings["portal-3"])
    for p in plan.passes:  # a tag received and shipped later is read in both passes
        reads = [s for e in p.epcs for s in by[e] if p.enter_s <= s.at_s <= p.leave_s]
        assert {s.epc.hex().upper() for s in reads} == set(p.epcs), p.load
        out_t = [s.at_s for s in reads if s.antenna in (1, 2)]
        in_t = [s.at_s for s in reads if s.antenna in (3, 4)]
        assert (statistics.mean(out_t) < statistics.mean(in_t)) == (p.direction == "in")


def test_neighbour_traffic_is_weak(plan: Plan) -> None:
    by = _by_epc(plan.sightings["portal-3"])
    stray = [
        s.rssi_dbm for d in plan.distractors if d.at == "DOCK-4" for e in d.epcs for s in by[e]
    ]
    passing = [s.rssi_dbm for p in plan.passes for e in p.epcs for s in by[e]]
    assert len(stray) < len(passing) / 20
    assert max(stray, default=-100.0) < max(passing) - 15


def test_the_same_scenario_plans_the_same(plan: Plan) -> None:
    again = build(dock_door())
    assert again.sightings == plan.sightings
    assert again.passes == plan.passes


def test_scanner_scenarios_have_no_portal_output(tmp_path: Path) -> None:
    small = Path(str(resources.files("simulators") / "scenarios" / "small-site.toml")).read_text()
    scanners_only = small[: small.index("# ---- DOCK-3: an RFID portal")]
    plan = plan_of(tmp_path, scanners_only)
    assert not plan.scenario.portals
    assert (plan.sightings, plan.faults, plan.passes, plan.distractors) == ({}, {}, (), ())


def test_small_site_has_a_portal_with_a_load_in_and_out() -> None:
    scenarios = resources.files("simulators") / "scenarios"
    plan = build(Path(str(scenarios / "small-site.toml")))
    assert [(p.door, p.direction, len(p.epcs)) for p in plan.passes] == [
        ("DOCK-3", "in", 11),
        ("DOCK-3", "out", 5),
    ]
    assert Balance("MUG-WHITE", MUG, "DOCK-3", None, 3) in plan.truth  # 10 in, 4 out, 3 shelved
    assert [d.kind for d in plan.distractors] == ["backout"]
    assert plan.duration_s <= 25


def test_portal_noise_is_what_the_portal_lists() -> None:
    clean = scenario_noise(PortalActor(id="p", door="D"))
    assert (clean.miss_read_p, clean.shadowing_db, clean.one_side_p) == (0.0, 0.0, 0.0)
    assert clean.multipath_loss_db == 1000.0
    assert clean.dead_tag_p == 0.0
    some = scenario_noise(PortalActor(id="p", door="D", noise=("missed-reads",), noise_scale=2))
    assert some.miss_read_p == NoiseLevel().miss_read_p * 2
    assert some.bad_orientation_p == 0.0


# ---- errors name the file and the field ------------------------------------------------------

HEAD = """
site = "tiny"
[[items]]
sku = "A"
gtin = "04006381333931"
[[locations]]
code = "DOCK"
kind = "dock"
[[locations]]
code = "DOCK-2"
kind = "dock"
[[locations]]
code = "S1"
kind = "shelf"
[[scanners]]
id = "s1"
home = "S1"
[[portals]]
id = "p1"
door = "DOCK"
"""
EVENTS = """
[[events]]
at = 0
kind = "delivery"
by = "p1"
to = "DOCK"
lines = [{ sku = "A", qty = 3 }]
[[events]]
at = 20
kind = "staged"
by = "p1"
for_s = 5
lines = [{ sku = "A", qty = 2 }]
[[events]]
at = 40
kind = "shipment"
by = "p1"
from = "DOCK"
lines = [{ sku = "A", qty = 2 }]
"""


def plan_of(tmp_path: Path, text: str) -> Plan:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return build(path)


def test_the_small_portal_scenario_is_valid(tmp_path: Path) -> None:
    p = plan_of(tmp_path, HEAD + EVENTS)
    assert [x.direction for x in p.passes] == ["in", "out"]
    assert p.truth == (Balance("A", "04006381333931", "DOCK", None, 1),)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('{ sku = "A", qty = 3 }', '{ sku = "A", qty = 3, lot = "L1" }',
         "events.0.lines.0.lot: RFID lines carry no lot"),
        ('{ sku = "A", qty = 2 }]\n[[events]]\nat = 40',
         '{ sku = "A", qty = 2, expiry = 2027-01-01 }]\n[[events]]\nat = 40',
         "events.1.lines.0.expiry: RFID lines carry no expiry"),
        ('to = "DOCK"', 'to = "DOCK-2"', "events.0.to: portal 'p1' is at 'DOCK', not 'DOCK-2'"),
        ('from = "DOCK"', 'from = "S1"', "events.2.from: portal 'p1' is at 'DOCK', not 'S1'"),
        ('kind = "staged"\nby = "p1"', 'kind = "staged"\nby = "p9"',
         "events.1.by: unknown portal 'p9'"),
        ('door = "DOCK"', 'door = "DOCK-9"', "portals.0.door: unknown location 'DOCK-9'"),
        ('door = "DOCK"', 'door = "S1"', "portals.0.door: 'S1' is a shelf, not a dock door"),
        ('door = "DOCK"', 'door = "DOCK"\nprofile = "acme-1"',
         "portals.0.profile: unknown reader profile 'acme-1'"),
        ('door = "DOCK"', 'door = "DOCK"\nneighbour = "DOCK-7"',
         "portals.0.neighbour: unknown location 'DOCK-7'"),
        ('door = "DOCK"', 'door = "DOCK"\ninside_ports = [2, 3]',
         "portals.0: outside_ports and inside_ports must be distinct"),
        ('id = "p1"', 'id = "s1"', "portals.0.id: 's1' is also a scanner"),
        ('kind = "staged"\nby = "p1"\nfor_s = 5',
         'kind = "neighbour-traffic"\nby = "p1"',
         "events.1.by: portal 'p1' has no neighbour door"),
        ('by = "p1"\nto = "DOCK"', 'by = "p1"\nto = "DOCK"\nnoise = ["garbage"]',
         "events.0.noise: scanner noise on a portal event"),
        ('by = "p1"\nto = "DOCK"', 'by = "s1"\nto = "DOCK"\nstand_s = 3',
         "events.0.stand_s: only for loads through a portal"),
        ('kind = "shipment"\nby = "p1"', 'kind = "pick"\nby = "p1"',
         "events.2.by: 'p1' is a portal; portals see deliveries and shipments"),
        ('from = "DOCK"\nlines = [{ sku = "A", qty = 2 }]',
         'from = "DOCK"\nlines = [{ sku = "A", qty = 5 }]',
         "events.2.lines.0: takes 5 x A from DOCK, but only 3 are there"),
        ('for_s = 5', 'for_s = 0', "events.1.staged.for_s"),
        ('kind = "staged"\nby = "p1"\nfor_s = 5\nlines = [{ sku = "A", qty = 2 }]',
         'kind = "reader-fault"\nby = "p1"\nfault = "explode"',
         "events.1.reader-fault.fault"),
        ('door = "DOCK"', 'door = "DOCK"\ntag_level = "case"', "portals.0.tag_level"),
    ],
)  # fmt: skip
def test_bad_portal_scenario_names_file_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = HEAD + EVENTS
    assert old in text
    with pytest.raises(ScenarioError) as err:
        plan_of(tmp_path, text.replace(old, new, 1))
    assert str(tmp_path / "scenario.toml") in str(err.value)
    assert expected in str(err.value)


def test_a_door_has_one_portal(tmp_path: Path) -> None:
    text = HEAD + '[[portals]]\nid = "p2"\ndoor = "DOCK"\n' + EVENTS
    with pytest.raises(ScenarioError, match=r"portals\.1\.door: 'DOCK' already has portal 'p1'"):
        plan_of(tmp_path, text)


def test_neighbour_traffic_at_a_door_with_its_own_portal_is_refused(tmp_path: Path) -> None:
    text = HEAD.replace('door = "DOCK"', 'door = "DOCK"\nneighbour = "DOCK-2"')
    text += '[[portals]]\nid = "p2"\ndoor = "DOCK-2"\n' + EVENTS.replace(
        'kind = "staged"\nby = "p1"\nfor_s = 5', 'kind = "neighbour-traffic"\nby = "p1"'
    )
    with pytest.raises(ScenarioError, match=r"events\.1: 'DOCK-2' has a portal of its own"):
        plan_of(tmp_path, text)


def test_two_portals_side_by_side_see_each_others_loads_weakly(tmp_path: Path) -> None:
    text = HEAD.replace('door = "DOCK"', 'door = "DOCK"\nneighbour = "DOCK-2"')
    text += '[[portals]]\nid = "p2"\ndoor = "DOCK-2"\nneighbour = "DOCK"\n'
    text += EVENTS.replace('by = "p1"\nto = "DOCK"', 'by = "p2"\nto = "DOCK-2"')
    text = text.replace('from = "DOCK"\nlines = [{ sku = "A", qty = 2 }]',
                        'from = "DOCK"\nlines = [{ sku = "A", qty = 0 }]')  # fmt: skip
    text = text.replace(
        '[[events]]\nat = 40\nkind = "shipment"\nby = "p1"\nfrom = "DOCK"\n'
        'lines = [{ sku = "A", qty = 0 }]\n',
        "",
    )
    p = plan_of(tmp_path, text)
    (load,) = p.passes
    assert load.door == "DOCK-2"
    own, other = _by_epc(p.sightings["p2"]), _by_epc(p.sightings["p1"])
    own_db = [s.rssi_dbm for e in load.epcs for s in own[e]]
    other_db = [s.rssi_dbm for e in load.epcs for s in other[e]]
    assert len(other_db) < len(own_db) / 10
    assert max(other_db, default=-100.0) < max(own_db) - 15


def test_a_load_staged_before_crossing_is_one_long_pass(tmp_path: Path) -> None:
    text = (HEAD + EVENTS).replace('to = "DOCK"\n', 'to = "DOCK"\nstand_s = 20\n', 1)
    p = plan_of(tmp_path, text)
    staged, quick = p.passes[0], plan_of(tmp_path, HEAD + EVENTS).passes[0]
    assert staged.leave_s == pytest.approx(quick.leave_s + 20.0)
    by = _by_epc(p.sightings["p1"])
    standing = [s for e in staged.epcs for s in by[e] if 6.0 <= s.at_s <= 24.0]
    assert len(standing) > 100
    assert sum(s.antenna in (1, 2) for s in standing) > 0.9 * len(standing)


def test_neighbour_traffic_has_a_direction_not_a_side(tmp_path: Path) -> None:
    text = HEAD.replace('door = "DOCK"', 'door = "DOCK"\nneighbour = "DOCK-2"') + EVENTS.replace(
        'kind = "staged"\nby = "p1"\nfor_s = 5',
        'kind = "neighbour-traffic"\nby = "p1"\nside = "inside"',
    )
    with pytest.raises(ScenarioError, match=r"events\.1\.neighbour-traffic\.side: Extra inputs"):
        plan_of(tmp_path, text)
