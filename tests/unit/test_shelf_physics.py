"""Shelf physics: pieces and their weights, transients, disturbances, drift, creep, noise, the
motion detector, plates, determinism, and bad input. Pure: no I/O, no clocks."""

import itertools
import math
import statistics
from collections.abc import Iterable
from dataclasses import replace
from typing import get_args

import pytest

from simulators.shelf.lanes import CellSpec, Change, Foreign, HandRest, Knock, LaneSpec, Pieces
from simulators.shelf.noise import ALL_NOISES, ShelfNoise, ShelfNoiseName
from simulators.shelf.random_events import (
    BASELINE_SAMPLES,
    EventKind,
    RandomShelfRun,
    ShelfEvent,
    best_count_p,
    random_shelf_events,
)
from simulators.shelf.world import MOTION_WINDOW_S, ShelfWorld

BOLT = 48.5


def _lane(
    lane_id: str = "L1", unit_g: float = BOLT, initial: int = 0, cells: Iterable[CellSpec] = ()
) -> LaneSpec:
    cells = tuple(cells) or (CellSpec(1, 1),)
    return LaneSpec(lane_id, "BOLT", unit_g, cells, initial_pieces=initial)


def _only(*names: ShelfNoiseName) -> ShelfNoise:
    return ShelfNoise().only(names)


def _series(
    world: ShelfWorld, lane: str, t0: float, t1: float, every_s: float = 0.05
) -> list[tuple[float, float, bool]]:
    n = round((t1 - t0) / every_s)
    return world.lane_samples(lane, [t0 + i * every_s for i in range(n + 1)])


def _grams(world: ShelfWorld, lane: str, t: float) -> float:
    return world.lane_samples(lane, [t])[0][1]


# ---- pieces -------------------------------------------------------------------------------


def test_a_clean_world_reads_the_nominal_pieces_and_is_stable() -> None:
    changes: list[Change] = [Pieces(1.0, "L1", 5), Pieces(4.0, "L1", -2)]
    world = ShelfWorld([_lane(initial=3)], changes, noise=ShelfNoise.clean())
    assert _grams(world, "L1", 0.9) == pytest.approx(3 * BOLT)
    assert _grams(world, "L1", 3.9) == pytest.approx(8 * BOLT)
    reading = world.reading(1, 1, 6.0)
    assert reading.grams == pytest.approx(6 * BOLT)
    assert reading.stable


def test_piece_weights_spread_with_the_items_cv() -> None:
    lane = LaneSpec("L1", "BOLT", 100.0, (CellSpec(1),), piece_cv=0.02, initial_pieces=4000)
    world = ShelfWorld([lane], [], noise=_only("piece-weights"))
    pieces = world.lane_physics("L1").pieces
    assert statistics.mean(pieces) == pytest.approx(100.0, abs=0.2)
    assert statistics.stdev(pieces) == pytest.approx(2.0, rel=0.1)
    assert _grams(world, "L1", 1.0) == pytest.approx(sum(pieces))


def test_a_pick_takes_real_pieces_and_the_truth_says_which_weight() -> None:
    changes: list[Change] = [Pieces(1.0, "L1", -3), Pieces(3.0, "L1", 2)]
    world = ShelfWorld([_lane(initial=10)], changes, seed=4, noise=_only("piece-weights"))
    pick, put = world.truth()
    assert (pick.kind, pick.pieces, put.pieces) == ("pieces", -3, 2)
    assert pick.grams == pytest.approx(-3 * BOLT, rel=0.05)
    assert pick.grams != pytest.approx(-3 * BOLT, abs=1e-6)  # real pieces, not nominal
    before, after = _grams(world, "L1", 0.5), _grams(world, "L1", 2.9)
    assert after - before == pytest.approx(pick.grams)
    assert _grams(world, "L1", 9.0) - after == pytest.approx(put.grams)
    assert len(world.lane_physics("L1").pieces) == 9


def test_foreign_pieces_weigh_their_own_item_and_count_no_pieces() -> None:
    changes: list[Change] = [Foreign(1.0, "L1", 1, 30.0, sku="NUT"), Foreign(5.0, "L1", -1, 30.0)]
    world = ShelfWorld([_lane(initial=2)], changes, noise=_only("piece-weights"))
    put, take = world.truth()
    assert (put.kind, put.pieces) == ("foreign", 0)
    assert put.grams == pytest.approx(30.0, rel=0.05)
    assert take.grams == pytest.approx(-put.grams)


# ---- transients and disturbances ------------------------------------------------------------


def test_a_put_overshoots_rings_and_settles_within_noise_by_its_settle_time() -> None:
    world = ShelfWorld([_lane(unit_g=1000.0)], [Pieces(1.0, "L1", 2)], noise=_only("transients"))
    (put,) = world.truth()
    assert 1.0 < put.step_s < put.settled_s
    assert 1.3 <= put.settled_s <= 3.0
    during = [g for _, g, _ in _series(world, "L1", 1.0, put.settled_s)]
    assert max(during) >= 2000.0 * 1.1  # impact overshoot >= 10 % of the change
    assert min(during) < 2000.0  # it rings back below
    after = _series(world, "L1", put.settled_s + 0.05, put.settled_s + 2.0)  # the next sample
    assert all(abs(g - 2000.0) <= 0.06 for _, g, _ in after)


def test_the_hands_contact_shows_even_on_a_tiny_change() -> None:
    world = ShelfWorld([_lane(unit_g=5.0)], [Pieces(1.0, "L1", 1)], noise=_only("transients"))
    peak = max(g for _, g, _ in _series(world, "L1", 1.0, 3.0, 0.01))
    assert 50.0 < peak <= 605.0  # half-sine of 100..600 g over the piece's 5 g


def test_a_knock_rings_out_to_the_same_load() -> None:
    world = ShelfWorld([_lane(initial=4)], [Knock(1.0, "L1")], noise=_only("transients"))
    (knock,) = world.truth()
    assert (knock.pieces, knock.grams) == (0, 0.0)
    during = [g for _, g, _ in _series(world, "L1", 1.0, knock.settled_s, 0.01)]
    assert max(during) - min(during) > 50.0
    assert _grams(world, "L1", knock.settled_s + 0.5) == pytest.approx(4 * BOLT, abs=0.06)


def test_a_resting_hand_weighs_with_tremor_then_lifts() -> None:
    changes: list[Change] = [HandRest(1.0, "L1", 1500.0, 4.0)]
    world = ShelfWorld([_lane(initial=2)], changes, noise=_only("transients"))
    rest = [g - 2 * BOLT for _, g, _ in _series(world, "L1", 1.5, 4.5)]
    assert all(1470.0 <= g <= 1530.0 for g in rest)
    assert max(rest) - min(rest) > 10.0  # tremor
    assert _grams(world, "L1", 5.5) == pytest.approx(2 * BOLT)
    assert world.truth()[0].grams == 0.0


def test_the_stable_bit_clears_while_things_move_and_sets_after_the_window() -> None:
    world = ShelfWorld([_lane(initial=5)], [Pieces(2.0, "L1", -1)], seed=3)
    (pick,) = world.truth()
    samples = _series(world, "L1", 0.0, 6.0)
    assert not any(s for t, _, s in samples if t < MOTION_WINDOW_S - 0.05)  # power-on
    assert all(s for t, _, s in samples if 1.0 <= t < 2.0)
    assert not any(s for t, _, s in samples if pick.step_s <= t < pick.step_s + 0.4)
    assert all(s for t, _, s in samples if t >= pick.settled_s + MOTION_WINDOW_S)


# ---- slow effects and sensor noise ----------------------------------------------------------


def test_drift_stays_within_3_g_and_moves_slowly() -> None:
    cells = [CellSpec(1, c) for c in range(1, 5)]
    lanes = [_lane(f"L{c.channel}", cells=[c]) for c in cells]
    world = ShelfWorld(lanes, [], seed=9, noise=_only("drift"))
    for lane in lanes:
        series = [g for _, g, _ in _series(world, lane.id, 0.0, 3600.0, 10.0)]
        assert max(abs(g) for g in series) <= 3.0
        assert max(abs(b - a) for a, b in itertools.pairwise(series)) <= 0.2
        assert max(series) - min(series) > 0.1  # it does drift


def test_creep_rises_to_0_03_percent_of_a_new_load_over_minutes() -> None:
    world = ShelfWorld([_lane(unit_g=1000.0)], [Pieces(0.0, "L1", 10)], noise=_only("creep"))
    (put,) = world.truth()
    settled = 10_000.0
    assert _grams(world, "L1", put.step_s + 0.05) == pytest.approx(settled, abs=0.01)
    assert _grams(world, "L1", put.step_s + 300.0) == pytest.approx(
        settled + 3.0 * (1 - math.exp(-1)), abs=1e-3
    )
    assert _grams(world, "L1", put.step_s + 3000.0) == pytest.approx(settled + 3.0, abs=1e-3)


def test_sensor_noise_is_white_at_0_5_g_and_scales() -> None:
    for scale in (1.0, 3.0):
        noise = ShelfNoise(scale=scale).only(("sensor",))
        world = ShelfWorld([_lane(initial=1)], [], seed=2, noise=noise)
        series = [g for _, g, _ in _series(world, "L1", 1.0, 301.0)]
        assert statistics.mean(series) == pytest.approx(BOLT, abs=0.05 * scale)
        assert statistics.stdev(series) == pytest.approx(0.5 * scale, rel=0.05)


def test_a_still_lane_at_default_noise_is_nearly_always_stable() -> None:
    world = ShelfWorld([_lane(initial=20)], [], seed=5)
    samples = _series(world, "L1", 1.0, 601.0, 0.1)
    assert sum(s for _, _, s in samples) / len(samples) > 0.99


def test_every_noise_can_be_switched_off() -> None:
    for name in ALL_NOISES:
        noise = ShelfNoise().only(tuple(n for n in ALL_NOISES if n != name))
        assert noise != ShelfNoise()
    assert ShelfNoise().only(()) == ShelfNoise().only(()).only(ALL_NOISES)


# ---- plates, cells, determinism -------------------------------------------------------------


def test_a_plate_splits_its_lane_among_cells_and_sums_back() -> None:
    cells = [CellSpec(2, 1, 0.5), CellSpec(2, 2, 0.3), CellSpec(3, 1, 0.2)]
    world = ShelfWorld(
        [_lane(unit_g=1200.0, cells=cells)], [Pieces(1.0, "L1", 2)], noise=ShelfNoise.clean()
    )
    assert world.cells() == [(2, 1), (2, 2), (3, 1)]
    readings = [world.reading(c.unit, c.channel, 5.0) for c in cells]
    assert [r.grams for r in readings] == pytest.approx([1200.0, 720.0, 480.0])
    assert all(r.stable for r in readings)
    assert _grams(world, "L1", 5.0) == pytest.approx(2400.0)


def test_a_plates_cells_each_have_their_own_noise() -> None:
    cells = [CellSpec(1, 1, 0.5), CellSpec(1, 2, 0.5)]
    world = ShelfWorld([_lane(cells=cells)], [], seed=1, noise=_only("sensor"))
    a = [world.reading(1, 1, t / 10).grams for t in range(10, 200)]
    world = ShelfWorld([_lane(cells=cells)], [], seed=1, noise=_only("sensor"))
    b = [world.reading(1, 2, t / 10).grams for t in range(10, 200)]
    assert a != b
    assert statistics.stdev(a) == pytest.approx(0.5, rel=0.25)


def test_the_same_seed_gives_the_same_world_whatever_the_query_times() -> None:
    changes: list[Change] = [
        Pieces(1.0, "L1", 3),
        Knock(2.0, "L1"),
        HandRest(3.0, "L1", 900.0, 2.0),
    ]
    dense = ShelfWorld([_lane(initial=5)], changes, seed=7)
    sparse = ShelfWorld([_lane(initial=5)], changes, seed=7)
    other = ShelfWorld([_lane(initial=5)], changes, seed=8)
    dense_by_t = {round(t, 2): (g, s) for t, g, s in _series(dense, "L1", 0.0, 8.0, 0.05)}
    for t in (0.5, 1.2, 2.35, 4.0, 7.95):
        reading = sparse.reading(1, 1, t)
        assert (reading.grams, reading.stable) == dense_by_t[t]
    assert _grams(other, "L1", 7.95) != dense_by_t[7.95][0]


# ---- bad input ----------------------------------------------------------------------------


def test_bad_lanes_and_changes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="takes 3 pieces but only 2"):
        ShelfWorld([_lane(initial=2)], [Pieces(1.0, "L1", -3)])
    with pytest.raises(ValueError, match="unknown lane 'L9'"):
        ShelfWorld([_lane()], [Pieces(1.0, "L9", 1)])
    with pytest.raises(ValueError, match="before the change before it"):
        ShelfWorld([_lane(initial=5)], [Pieces(2.0, "L1", 1), Pieces(1.0, "L1", 1)])
    with pytest.raises(ValueError, match="shares must be > 0 and sum to 1"):
        _lane(cells=[CellSpec(1, 1, 0.5), CellSpec(1, 2, 0.4)])
    with pytest.raises(ValueError, match="under two lanes"):
        ShelfWorld([_lane("A"), _lane("B")], [])
    with pytest.raises(LookupError, match="unit 4 channel 1"):
        ShelfWorld([_lane()], []).reading(4, 1, 0.0)
    with pytest.raises(ValueError, match=r"ShelfNoise\.scale"):
        ShelfNoise(scale=-1)


# ---- random events for the accuracy bench -------------------------------------------------


@pytest.fixture(scope="module")
def events_run() -> RandomShelfRun:
    return random_shelf_events(600, seed=3)


def test_random_events_cover_every_kind_with_true_counts(events_run: RandomShelfRun) -> None:
    run = events_run
    assert len(run.events) == len(run.changes) == 600
    assert {e.kind for e in run.events} == set(get_args(EventKind))
    assert [e.at_s for e in run.events] == sorted(e.at_s for e in run.events)
    for e in run.events:
        expected = {"pick": (-1, -1), "multi-pick": (-5, -2), "put": (1, 5)}.get(e.kind, (0, 0))
        assert expected[0] <= e.pieces <= expected[1], e
        if e.kind in ("pick", "multi-pick", "put"):
            assert e.grams / e.unit_weight_g == pytest.approx(e.pieces, abs=0.2)
        if e.kind == "foreign":
            residual = e.grams / e.unit_weight_g % 1
            assert 0.29 <= residual <= 0.71  # no whole number of the lane's units
    units = [lane.unit_weight_g for lane in run.lanes]
    assert min(units) >= 5.0
    assert max(units) <= 5000.0


def test_random_events_on_a_lane_wait_for_the_last_one(events_run: RandomShelfRun) -> None:
    last: dict[str, ShelfEvent] = {}
    for e in events_run.events:
        before = last.get(e.lane)
        if before is not None:
            assert e.at_s >= before.settled_s
        last[e.lane] = e
    assert events_run.duration_s >= max(e.settled_s for e in events_run.events)


def test_random_events_are_what_the_world_shows(events_run: RandomShelfRun) -> None:
    world = events_run.world()
    for e in [e for e in events_run.events if e.kind in ("put", "multi-pick")][:20]:
        before, after = world.lane_samples(e.lane, [e.at_s - 0.05, e.settled_s + 0.1])
        assert after[1] - before[1] == pytest.approx(e.grams, abs=6.0)  # noise, drift, creep
    again = random_shelf_events(600, seed=3)
    assert again.events == events_run.events
    assert random_shelf_events(600, seed=4).events != events_run.events


def test_best_count_p_is_scale_counting_statistics() -> None:
    noise = ShelfNoise()
    e = ShelfEvent(0, 1.0, "L1", "pick", -1, -10.0, 10.0, 0.2, 1, 1.2, 2.0)
    var = (0.2 * 10.0) ** 2 + 2 * 0.25 / BASELINE_SAMPLES
    assert best_count_p(e, noise) == pytest.approx(math.erf(5.0 / math.sqrt(2 * var)))
    bigger = replace(e, pieces=-4)
    assert best_count_p(bigger, noise) < best_count_p(e, noise)  # type: ignore[operator]
    assert best_count_p(replace(e, kind="foreign", pieces=0), noise) is None
    assert best_count_p(replace(e, kind="knock", pieces=0, piece_cv=0.0), ShelfNoise.clean()) == 1
