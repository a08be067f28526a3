"""Portal physics: EPC encoding, determinism, timing, direction, distractors, noise knobs."""

import json
import math
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import fields

import pytest
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC

from simulators.barcodes import check_digit
from simulators.portal.epc import (
    FILTER_POS_ITEM,
    FILTER_SSCC_FULL_CASE,
    SERIAL_MAX,
    sgtin96,
    sscc96,
)
from simulators.portal.identity import TagMaker
from simulators.portal.layout import PortalLayout
from simulators.portal.motion import DOORWAY_X_M, STAGE_X_M, crossing, returning
from simulators.portal.noise import NoiseLevel
from simulators.portal.radio import DEFAULT_PROFILE, PROFILES
from simulators.portal.random_passes import DEFAULT_GTINS, RandomRun, random_passes
from simulators.portal.render import Scene, render
from simulators.portal.tags import PlacedTag
from simulators.sightings import Sighting
from tests.conftest import TESTDATA

RUN_PASSES = 400


@pytest.fixture(scope="module")
def run() -> RandomRun:
    return random_passes(RUN_PASSES, NoiseLevel(), seed=11)


def _by_epc(sightings: Iterable[Sighting]) -> dict[str, list[Sighting]]:
    out: dict[str, list[Sighting]] = defaultdict(list)
    for s in sightings:
        out[s.epc.hex().upper()].append(s)
    return out


# ---- EPC encoding ------------------------------------------------------------------------


def _vectors(prefix: str) -> list[dict[str, str]]:
    lines = (TESTDATA / "epc" / "epcpy-vectors.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return [r for r in rows if r.get("expect_valid") and r.get("tag_uri", "").startswith(prefix)]


SGTIN96_VECTORS = _vectors("urn:epc:tag:sgtin-96:")
SSCC96_VECTORS = _vectors("urn:epc:tag:sscc-96:")


def test_the_vector_file_has_96_bit_cases() -> None:
    assert SGTIN96_VECTORS
    assert SSCC96_VECTORS


@pytest.mark.parametrize("row", SGTIN96_VECTORS, ids=lambda r: r["name"])
def test_sgtin96_matches_epcpy_vectors(row: dict[str, str]) -> None:
    filter_value, company, item_ref, serial = row["tag_uri"].split(":")[-1].split(".")
    body = item_ref[0] + company + item_ref[1:]
    gtin = body + check_digit(body)
    epc = sgtin96(gtin, int(serial), len(company), int(filter_value))
    assert epc.hex().upper() == row["hex"]


@pytest.mark.parametrize("row", SSCC96_VECTORS, ids=lambda r: r["name"])
def test_sscc96_matches_epcpy_vectors(row: dict[str, str]) -> None:
    filter_value, company, serial_ref = row["tag_uri"].split(":")[-1].split(".")
    assert sscc96(company, serial_ref, int(filter_value)).hex().upper() == row["hex"]


@pytest.mark.parametrize("company_digits", range(6, 13))
def test_sgtin96_decodes_with_epcpy_to_gtin_and_serial(company_digits: int) -> None:
    rng = random.Random(company_digits)
    for _ in range(20):
        body = "".join(rng.choice("0123456789") for _ in range(13))
        gtin = body + check_digit(body)
        serial = rng.randrange(SERIAL_MAX + 1)
        tag = SGTIN.from_hex(sgtin96(gtin, serial, company_digits, FILTER_POS_ITEM).hex())
        assert tag.gtin() == gtin
        assert tag.epc_uri.rsplit(".", 1)[1] == str(serial)
        assert tag.epc_uri.startswith("urn:epc:id:sgtin:")


def test_tag_maker_never_repeats_and_pallets_are_sscc() -> None:
    maker = TagMaker(seed=3)
    items = [maker.item(DEFAULT_GTINS[n % 2]) for n in range(500)]
    pallets = [maker.pallet() for _ in range(50)]
    assert len(set(items)) == len(items)
    assert len(set(pallets)) == len(pallets)
    pallet = SSCC.from_hex(pallets[0].hex())
    assert pallet.epc_uri.startswith("urn:epc:id:sscc:4012345.")
    assert pallets[0][1] >> 5 == FILTER_SSCC_FULL_CASE  # epcpy's decode drops the filter
    assert TagMaker(seed=3).item(DEFAULT_GTINS[0]) == items[0]


# ---- determinism and timing ----------------------------------------------------------------


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = random_passes(20, NoiseLevel(), seed=5)
    assert a == random_passes(20, NoiseLevel(), seed=5)
    assert a.sightings != random_passes(20, NoiseLevel(), seed=6).sightings


def test_count_passes_time_sorted_on_layout_ports(run: RandomRun) -> None:
    assert len(run.passes) == RUN_PASSES
    times = [s.at_s for s in run.sightings]
    assert times == sorted(times)
    assert {s.antenna for s in run.sightings} == {1, 2, 3, 4}
    assert all(s.phase_deg is not None and 0 <= s.phase_deg < 360 for s in run.sightings)
    assert all(-84 <= s.rssi_dbm <= -20 for s in run.sightings)


def test_every_read_is_within_its_loads_field_time(run: RandomRun) -> None:
    spans = {e: (p.enter_s, p.leave_s) for p in run.passes for e in p.epcs}
    spans |= {e: (d.enter_s, d.leave_s) for d in run.distractors for e in d.epcs}
    for s in run.sightings:
        enter_s, leave_s = spans[s.epc.hex().upper()]
        assert enter_s <= s.at_s <= leave_s


def test_epcs_are_unique_across_loads_and_decode_to_the_gtins(run: RandomRun) -> None:
    loads = [(p.load, p.epcs) for p in run.passes] + [(d.load, d.epcs) for d in run.distractors]
    epcs = [e for _, load in loads for e in load]
    assert len(epcs) == len(set(epcs))
    assert len({load for load, _ in loads}) == len(loads)
    for p in run.passes[:20]:
        *items, pallet = p.epcs
        assert {SGTIN.from_hex(e).gtin() for e in items} <= set(DEFAULT_GTINS)
        assert SSCC.from_hex(pallet).epc_uri.startswith("urn:epc:id:sscc:")


# ---- direction -----------------------------------------------------------------------------


def _direction_ok(run: RandomRun, by: dict[str, list[Sighting]]) -> float:
    outside = set(run.layout.outside_ports)
    good = 0
    for p in run.passes:
        reads = [s for e in p.epcs for s in by[e]]
        out_t = [s.at_s for s in reads if s.antenna in outside]
        in_t = [s.at_s for s in reads if s.antenna not in outside]
        if out_t and in_t:
            good += (statistics.mean(out_t) < statistics.mean(in_t)) == (p.direction == "in")
    return good / len(run.passes)


def test_loads_are_seen_first_on_the_side_they_come_from(run: RandomRun) -> None:
    assert _direction_ok(run, _by_epc(run.sightings)) >= 0.99


def test_the_side_a_load_comes_from_sees_it_stronger_first(run: RandomRun) -> None:
    by = _by_epc(run.sightings)
    outside = set(run.layout.outside_ports)
    good = 0
    for p in run.passes:
        middle = (p.enter_s + p.leave_s) / 2
        first = [s for e in p.epcs for s in by[e] if s.at_s < middle]
        out_db = [s.rssi_dbm for s in first if s.antenna in outside]
        in_db = [s.rssi_dbm for s in first if s.antenna not in outside]
        near, far = (out_db, in_db) if p.direction == "in" else (in_db, out_db)
        good += not far or statistics.mean(near) > statistics.mean(far)
    assert good / len(run.passes) >= 0.99


def test_layout_is_a_parameter() -> None:
    layout = PortalLayout(outside_ports=(3, 4), inside_ports=(1, 2))
    swapped = random_passes(100, NoiseLevel(), seed=2, layout=layout)
    assert _direction_ok(swapped, _by_epc(swapped.sightings)) >= 0.99


def test_readers_without_phase_report_none() -> None:
    zebra = random_passes(5, NoiseLevel(), seed=1, profile="zebra-fx9600")
    assert zebra.sightings
    assert all(s.phase_deg is None for s in zebra.sightings)


def test_phase_follows_distance() -> None:
    """Without noise, phase - 720 * distance / wavelength is one constant per tag and antenna."""
    layout, radio = PortalLayout(), PROFILES[DEFAULT_PROFILE]
    scene = Scene(layout.antennas(), radio, NoiseLevel.clean())
    tag = PlacedTag(b"\x30" * 12, 0.0, 0.0, 0.0, 0.0)
    path = crossing("outside", 0.0, 1.2, layout.field_half_m, 0.0)
    reads = render([tag], path, scene, random.Random(1))
    antennas = {a.port: a for a in layout.antennas()}
    offsets: dict[int, set[int]] = defaultdict(set)
    for at_s, _, port, _, phase in reads:
        a = antennas[port]
        d = math.dist((path.x_at(at_s), 0.0, path.z_m), (a.x_m, a.y_m, a.z_m))
        assert phase is not None
        offsets[port].add(round((phase - 720.0 * d / radio.wavelength_m) % 360.0) % 360)
    assert set(offsets) == {1, 2, 3, 4}
    assert all(len(o) == 1 for o in offsets.values()), offsets


# ---- distractors and noise -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "side", "turn_x_m"),
    [
        ("staged", "outside", -STAGE_X_M),
        ("staged", "inside", STAGE_X_M),
        ("backout", "outside", -DOORWAY_X_M),
        ("backout", "inside", DOORWAY_X_M),
        ("reversal", "outside", 0.5),
        ("reversal", "inside", -0.5),
    ],
)
def test_distractor_paths_leave_the_way_they_came(kind: str, side: str, turn_x_m: float) -> None:
    path = returning(kind, side, 10.0, 1.5, 8.0, 0.0, 2.0, 0.5)  # type: ignore[arg-type]
    assert path.legs[0].x0_m == path.legs[-1].x1_m == (-8.0 if side == "outside" else 8.0)
    assert min(abs(leg.x1_m - turn_x_m) for leg in path.legs) < 1e-9
    assert path.enter_s == 10.0


def test_a_crossing_goes_from_its_side_to_the_other() -> None:
    path = crossing("inside", 1.0, 2.0, 8.0, 0.1, stand_s=5.0)
    assert (path.legs[0].x0_m, path.legs[-1].x1_m) == (8.0, -8.0)
    assert path.leave_s == pytest.approx(1.0 + 16.0 / 2.0 + 5.0)


def test_returning_distractors_are_seen_mostly_on_their_own_side(run: RandomRun) -> None:
    by = _by_epc(run.sightings)
    outside = set(run.layout.outside_ports)
    returning_ = [d for d in run.distractors if d.kind != "neighbour-traffic"]
    assert {d.kind for d in returning_} == {"staged", "backout", "reversal"}
    for d in returning_:
        reads = [s for e in d.epcs for s in by[e]]
        own = [s for s in reads if (s.antenna in outside) == (d.side == "outside")]
        assert len(own) > len(reads) / 2, d


def test_neighbour_traffic_is_weak_here_and_strong_next_door() -> None:
    run = random_passes(150, NoiseLevel(), seed=8, neighbour_reader=True)
    here, there = _by_epc(run.sightings), _by_epc(run.neighbour_sightings)
    traffic = [d for d in run.distractors if d.kind == "neighbour-traffic"]
    assert traffic
    stray = [s.rssi_dbm for d in traffic for e in d.epcs for s in here[e]]
    own = [s.rssi_dbm for d in traffic for e in d.epcs for s in there[e]]
    passing = [s.rssi_dbm for p in run.passes for e in p.epcs for s in here[e]]
    assert len(stray) < len(own) / 10
    assert statistics.median(stray) < statistics.quantiles(passing, n=4)[0]
    assert max(stray) < max(own) - 10


def test_default_noise_loses_almost_no_tag(run: RandomRun) -> None:
    by = _by_epc(run.sightings)
    tags = [e for p in run.passes for e in p.epcs]
    assert sum(1 for e in tags if not by[e]) <= len(tags) * 0.001


def test_a_clean_world_reads_every_tag_and_has_no_distractors() -> None:
    run = random_passes(50, NoiseLevel.clean(), seed=9)
    by = _by_epc(run.sightings)
    assert run.distractors == ()
    assert all(by[e] for p in run.passes for e in p.epcs)


def test_more_noise_is_harder() -> None:
    def unread(scale: float) -> int:
        run = random_passes(100, NoiseLevel().scaled(scale), seed=10)
        by = _by_epc(run.sightings)
        return sum(1 for p in run.passes for e in p.epcs if not by[e])

    assert unread(1.0) < unread(4.0)


def test_noise_scaling() -> None:
    base = NoiseLevel()
    double = base.scaled(2.0)
    assert double.scale == 2.0
    assert double.miss_read_p == pytest.approx(0.2)
    assert double.neighbour_isolation_db == pytest.approx(base.neighbour_isolation_db / 2)
    assert base.scaled(100.0).miss_read_p == 0.95
    assert all(getattr(NoiseLevel.clean(), f.name) in (0.0, 1000.0) for f in fields(base))
    with pytest.raises(ValueError, match="miss_read_p"):
        NoiseLevel(miss_read_p=-0.1)


@pytest.mark.parametrize("count", [1, 2, 7, 60])
def test_exactly_count_passes_even_with_many_distractors(count: int) -> None:
    run = random_passes(count, NoiseLevel().scaled(8.0), seed=count)
    assert len(run.passes) == count
    kinds = {d.kind for d in run.distractors}
    assert count < 60 or kinds == {"staged", "backout", "reversal", "neighbour-traffic"}
