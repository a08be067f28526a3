"""The weight recognizer on synthetic lane streams (tests/shelf_stream.py), no I/O.

The clock is the sample time; every stream starts with the lane quiet long enough to have a
baseline (its first COUNT follows count_quiet_s later).
"""

import json
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from device_profiles import load_profile_of
from device_profiles.errors import ProfileError
from device_profiles.shelf import ShelfProfile
from edge_agent.readings import Scan, WeightSample
from edge_agent.recognizers.base import Output, Recognizer, Rejected, StateError, TxnDraft
from edge_agent.recognizers.weight import WeightRecognizer
from edge_agent.settings import CellRef, LaneConfig
from stockwire.txn import TxnKind
from tests.shelf_stream import T0, Stream

DEVICE = "shelf-1"
SHELF = load_profile_of("load-cell-shelf", ShelfProfile)


def lane(unit_g: float = 250.0, restock_from: str | None = None, id: str = "L1") -> LaneConfig:
    return LaneConfig(
        id=id,
        location=f"A-{id}",
        sku="SKU-1",
        unit_weight_g=unit_g,
        cells=(CellRef(unit=1),),
        pick_to="PACK-1",
        restock_from=restock_from,
    )


def shelf(**changes: Any) -> ShelfProfile:
    return ShelfProfile.model_validate({**SHELF.model_dump(), **changes})


class Feeder:
    """Feeds samples with the clock at each sample's time; keeps what came out."""

    def __init__(self, lanes: Sequence[LaneConfig] = (), profile: ShelfProfile = SHELF) -> None:
        self.now = T0
        self.lanes = tuple(lanes) or (lane(),)
        self.recognizer = WeightRecognizer(DEVICE, profile, self.lanes, self.clock)

    def clock(self) -> datetime:
        return self.now

    def feed(self, samples: Sequence[WeightSample | Scan]) -> list[Output]:
        out: list[Output] = []
        for sample in samples:
            self.now = sample.at
            out.extend(self.recognizer.feed(sample))
            out.extend(self.recognizer.tick())
        return out


def drafts(out: Sequence[Output], kind: TxnKind | None = None) -> list[TxnDraft]:
    return [o for o in out if isinstance(o, TxnDraft) and (kind is None or o.kind == kind)]


def moves(out: Sequence[Output]) -> list[TxnDraft]:
    return [d for d in drafts(out) if d.kind != TxnKind.COUNT]


def stocked(units: int, unit_g: float = 250.0, **kw: Any) -> Stream:
    return Stream(grams=units * unit_g, **kw).hold(40.0)


def test_the_recognizer_is_a_recognizer() -> None:
    recognizer: Recognizer = Feeder().recognizer
    assert recognizer.tick() == []


def test_a_single_pick_is_one_confident_pick_with_its_evidence() -> None:
    stream = stocked(10)
    start = stream.t_s
    stream.change(-250.0).hold(40.0)
    out = Feeder().feed(stream.samples)
    (pick,) = moves(out)
    assert (pick.kind, pick.qty, pick.sku) == (TxnKind.PICK, 1, "SKU-1")
    assert (pick.from_location, pick.to_location) == ("A-L1", "PACK-1")
    assert pick.confidence >= 0.9
    assert abs((pick.occurred_at - stream.at(start)).total_seconds()) < 0.05
    ev = pick.evidence
    assert ev.weight_before_g == pytest.approx(2500.0, abs=1.0)
    assert ev.weight_after_g == pytest.approx(2250.0, abs=1.0)
    assert ev.unit_weight_g == 250.0
    assert ev.residual_units is not None
    assert abs(ev.residual_units) < 0.02
    assert ev.settle_ms is not None
    assert 1000 <= ev.settle_ms <= 3000
    assert ev.note is None
    counts = drafts(out, TxnKind.COUNT)
    assert [(c.qty, c.to_location) for c in counts] == [(10, "A-L1"), (9, "A-L1")]
    assert all(c.confidence >= 0.9 for c in counts)


def test_several_items_taken_at_once_are_one_pick_of_all() -> None:
    stream = stocked(10).change(-750.0, contact_g=600.0).hold(5.0)
    (pick,) = moves(Feeder().feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 3)
    assert pick.confidence >= 0.9


def test_a_put_is_a_putaway_from_restock_when_the_lane_has_one() -> None:
    stream = stocked(4).change(500.0).hold(5.0)
    feeder = Feeder([lane(restock_from="RESERVE-1")])
    (put,) = moves(feeder.feed(stream.samples))
    assert (put.kind, put.qty, put.from_location, put.to_location) == (
        TxnKind.PUTAWAY,
        2,
        "RESERVE-1",
        "A-L1",
    )


def test_a_put_is_a_return_without_restock() -> None:
    stream = stocked(4).change(250.0).hold(5.0)
    (put,) = moves(Feeder().feed(stream.samples))
    assert (put.kind, put.qty, put.from_location, put.to_location) == (
        TxnKind.RETURN,
        1,
        None,
        "A-L1",
    )


@pytest.mark.parametrize(
    "disturb",
    [
        pytest.param(lambda s: s.rest(2000.0, 8.0), id="hand-rest"),
        pytest.param(lambda s: s.rest(200.0, 1.0, tremor_g=10.0), id="light-hand"),
        pytest.param(lambda s: s.knock(), id="knock"),
        pytest.param(lambda s: s.change(0.0, contact_g=500.0), id="touch"),
    ],
)
def test_a_disturbance_that_returns_posts_nothing(disturb: Any) -> None:
    stream = stocked(6)
    disturb(stream)
    stream.hold(5.0)
    assert moves(Feeder().feed(stream.samples)) == []


def test_a_foreign_item_of_more_than_a_unit_goes_to_review_with_a_note() -> None:
    stream = stocked(6).change(1.4 * 250.0).hold(5.0)
    (put,) = moves(Feeder().feed(stream.samples))
    assert (put.kind, put.qty) == (TxnKind.RETURN, 1)
    assert put.confidence < 0.5
    assert put.evidence.note is not None
    assert "+1.40 units" in put.evidence.note


def test_a_sub_unit_change_posts_a_doubtful_count_of_the_lane() -> None:
    stream = stocked(6).change(0.4 * 250.0).hold(5.0)
    out = Feeder().feed(stream.samples)
    (count,) = [d for d in drafts(out, TxnKind.COUNT) if d.confidence < 0.5]
    assert moves(out) == []
    assert (count.qty, count.to_location) == (6, "A-L1")
    assert count.evidence.note is not None
    assert "less than one unit" in count.evidence.note


def test_slow_drift_over_an_hour_makes_no_transaction_and_steady_counts() -> None:
    stream = Stream(grams=40 * 5.0, drift_g_per_s=3.0 / 3600.0).hold(3700.0)
    out = Feeder([lane(unit_g=5.0)]).feed(stream.samples)
    assert moves(out) == []
    counts = drafts(out, TxnKind.COUNT)
    assert [c.qty for c in counts] == [40, 40]  # after count_quiet_s, then count_every_s
    assert all(c.confidence >= 0.9 for c in counts)


def test_a_faster_drift_is_tracked_too() -> None:
    stream = Stream(grams=40 * 5.0, drift_g_per_s=0.02).hold(600.0)
    out = Feeder([lane(unit_g=5.0)]).feed(stream.samples)
    assert moves(out) == []
    assert [c.qty for c in drafts(out, TxnKind.COUNT)] == [40]


def test_a_device_offline_mid_change_gives_one_net_transaction() -> None:
    stream = stocked(10)
    start = stream.t_s
    stream.change(-250.0, settle_s=0.5)
    stream.samples[-3:] = []  # dropped before it settled
    stream.silence(20.0).change(-250.0).hold(5.0)
    (pick,) = moves(Feeder().feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 2)
    assert abs((pick.occurred_at - stream.at(start)).total_seconds()) < 0.05


def test_a_device_back_at_another_weight_after_silence_notes_the_gap() -> None:
    stream = stocked(10).silence(30.0)
    stream.grams -= 750.0
    stream.hold(5.0)
    (pick,) = moves(Feeder().feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 3)
    assert pick.evidence.note is not None
    assert "stopped for 30.1 s" in pick.evidence.note


@pytest.mark.parametrize(
    ("unit_g", "cut", "phase"),
    [(250.0, 5, "changing"), (5.0, 25, "settling"), (5.0, 33, "changing"), (5.0, 60, "settling")],
)
def test_restart_mid_change_replays_to_identical_outputs(
    unit_g: float, cut: int, phase: str
) -> None:
    stream = stocked(10, unit_g).change(-2 * unit_g).hold(1.0).change(unit_g).hold(35.0)
    lanes = [lane(unit_g)]
    whole = Feeder(lanes).feed(stream.samples)
    first = Feeder(lanes)
    before = first.feed(stream.samples[: 400 + cut])  # the first change starts at 400
    state = json.loads(json.dumps(first.recognizer.snapshot()))
    assert state["lanes"]["L1"]["phase"] == phase
    assert len(json.dumps(state)) < 2000
    second = Feeder(lanes)
    second.recognizer.restore(state)
    after = second.feed(stream.samples[400 + cut :])
    assert before + after == whole
    assert [(d.kind, d.qty) for d in moves(whole)] == [(TxnKind.PICK, 2), (TxnKind.RETURN, 1)]


def test_the_stable_bit_is_honoured() -> None:
    stream = stocked(4, stable_bit=True).change(-250.0).hold(10.0, stable=False)
    feeder = Feeder()
    assert moves(feeder.feed(stream.samples)) == []  # flat, but the transmitter says moving
    stream.samples.clear()
    stream.hold(1.0)
    (pick,) = moves(feeder.feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 1)


def test_the_stable_bit_can_be_ignored() -> None:
    stream = stocked(4, stable_bit=True).change(-250.0).hold(10.0, stable=False)
    (pick,) = moves(Feeder(profile=shelf(use_stable_bit=False)).feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 1)


def test_lanes_are_independent() -> None:
    one = stocked(10, seed=1).change(-250.0).hold(5.0)
    two = Stream(lane="L2", grams=2000.0, seed=2).hold(40.0).change(1000.0).hold(5.0)
    merged = sorted(one.samples + two.samples, key=lambda s: (s.at, s.lane))
    feeder = Feeder([lane(id="L1"), lane(unit_g=500.0, id="L2")])
    out = moves(feeder.feed(merged))
    assert sorted((d.to_location or d.from_location, d.kind, d.qty) for d in out) == [
        ("A-L2", TxnKind.RETURN, 2),
        ("PACK-1", TxnKind.PICK, 1),
    ]


def test_an_ambiguous_count_is_doubtful() -> None:
    stream = Stream(grams=10.5 * 250.0).hold(40.0)
    (count,) = drafts(Feeder().feed(stream.samples), TxnKind.COUNT)
    assert count.confidence < 0.5
    assert count.evidence.note is not None
    assert "10.50 units" in count.evidence.note


def test_bad_readings_are_rejected_not_raised() -> None:
    feeder = Feeder()
    at = T0
    out = feeder.feed(
        [
            WeightSample(DEVICE, "L9", 1.0, at),
            Scan(DEVICE, "SKU-1", at),
            WeightSample(DEVICE, "L1", float("nan"), at),
            WeightSample(DEVICE, "L1", 1.0, at),
            WeightSample(DEVICE, "L1", 1.0, at),
        ]
    )
    reasons = [o.reason for o in out if isinstance(o, Rejected)]
    assert len(reasons) == 4
    assert "lane 'L9' is not configured" in reasons[0]
    assert "L1" in reasons[0]
    assert "not a weight sample" in reasons[1]
    assert "not a number" in reasons[2]
    assert "not later" in reasons[3]


def test_a_bad_snapshot_is_refused_and_changes_nothing() -> None:
    feeder = Feeder()
    feeder.feed(stocked(3).samples)
    good = feeder.recognizer.snapshot()
    bad = json.loads(json.dumps(good))
    bad["lanes"]["L1"]["baseline"] = ["heavy", 1]
    with pytest.raises(StateError, match="not a finite number"):
        feeder.recognizer.restore(bad)
    for broken in ({"v": 99}, {"v": 1, "lanes": {}}, {"v": 1}):
        with pytest.raises(StateError):
            feeder.recognizer.restore(broken)
    assert feeder.recognizer.snapshot() == good


def test_the_shipped_profile_holds_the_defaults() -> None:
    default = ShelfProfile(kind="shelf", name="load-cell-shelf")
    skip = {"description"}
    assert SHELF.model_dump(exclude=skip) == default.model_dump(exclude=skip)


def test_a_profile_whose_window_outgrows_its_samples_is_refused(tmp_path: Any) -> None:
    bad = tmp_path / "tight.toml"
    bad.write_text('kind = "shelf"\nstable_window_s = 10.0\nwindow_samples_max = 16\n')
    with pytest.raises(ProfileError, match=r"tight.toml: \(root\): .*window_samples_max"):
        load_profile_of(bad, ShelfProfile)


def test_a_flicker_just_before_a_change_does_not_move_its_start() -> None:
    stream = stocked(10, stable_bit=True).hold(0.2, stable=False).hold(0.3)
    start = stream.t_s
    stream.change(-250.0).hold(5.0)
    (pick,) = moves(Feeder().feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 1)
    assert abs((pick.occurred_at - stream.at(start)).total_seconds()) < 0.05


def test_counts_stay_doubtful_after_a_change_went_to_review_until_the_lane_is_empty() -> None:
    stream = stocked(2).change(0.6 * 250.0).hold(40.0)  # a foreign item: 2.6 units
    stream.change(0.4 * 250.0).hold(40.0)  # another: 3.0 units, whole again
    stream.change(-3.0 * 250.0).hold(40.0)  # all taken: the lane is empty
    out = drafts(Feeder().feed(stream.samples))
    assert [(d.kind, d.qty, d.confidence >= 0.5) for d in out] == [
        (TxnKind.COUNT, 2, True),
        (TxnKind.RETURN, 1, False),  # 0.6 units: to review
        (TxnKind.COUNT, 3, False),
        (TxnKind.COUNT, 3, False),  # the second item: less than a unit, a count for review
        (TxnKind.COUNT, 3, False),  # whole units again, yet in doubt
        (TxnKind.PICK, 3, True),
        (TxnKind.COUNT, 0, True),
    ]
    assert "went to review" in (out[4].evidence.note or "")


def test_a_spike_just_before_a_change_does_not_move_its_start() -> None:
    stream = stocked(10)
    stream.grams += 10.0
    stream.hold(0.1)  # one sample 10 g off: a change starts ...
    stream.grams -= 10.0
    stream.hold(0.5)  # ... and comes back
    start = stream.t_s
    stream.change(-500.0).hold(5.0)
    (pick,) = moves(Feeder().feed(stream.samples))
    assert (pick.kind, pick.qty) == (TxnKind.PICK, 2)
    assert abs((pick.occurred_at - stream.at(start)).total_seconds()) < 0.05


def test_a_lane_noisier_than_its_profile_learns_its_noise() -> None:
    stream = Stream(grams=30 * 20.0, noise_g=1.5, seed=4).hold(120.0)  # 3 x the profile's
    for delta in (-20.0, -40.0, 20.0, -20.0, 60.0):
        stream.change(delta).hold(8.0)
    stream.rest(1500.0, 5.0).hold(8.0)
    out = Feeder([lane(unit_g=20.0)]).feed(stream.samples)
    assert [(d.kind, d.qty) for d in moves(out)] == [
        (TxnKind.PICK, 1),
        (TxnKind.PICK, 2),
        (TxnKind.RETURN, 1),
        (TxnKind.PICK, 1),
        (TxnKind.RETURN, 3),
    ]
    assert all(d.confidence >= 0.5 for d in drafts(out))


def test_a_lane_learns_that_its_pieces_spread_more_than_the_profile_says() -> None:
    rng = random.Random(5)
    stream = stocked(30, unit_g=500.0)
    for i in range(60):
        pieces = [rng.gauss(500.0, 0.05 * 500.0) for _ in range(1 + i % 3)]
        stream.change(sum(pieces) * (-1 if i % 2 else 1)).hold(6.0)
    sure = [d.confidence >= 0.5 for d in moves(Feeder([lane(unit_g=500.0)]).feed(stream.samples))]
    assert len(sure) == 60
    assert sum(sure[:20]) < 20  # at first some go to review (a CV of 5 %, the profile's 2 %)
    assert all(sure[40:])


def test_a_doubtful_level_waits_for_more_samples_before_review() -> None:
    stream = stocked(20, 15.0, stable_bit=True).knock(300.0)
    stream.grams += 1.5  # the first stable samples after the knock read 0.1 units high ...
    stream.hold(0.7)
    stream.grams -= 1.5  # ... then the lane is back where it was
    stream.hold(5.0)
    assert moves(Feeder([lane(15.0)]).feed(stream.samples)) == []
    hasty = Feeder([lane(15.0)], profile=shelf(level_wait_s_max=0.0)).feed(stream.samples)
    assert [(d.kind, d.confidence < 0.5) for d in drafts(hasty)][-1] == (TxnKind.COUNT, True)


def test_a_zero_drifted_beyond_its_bound_makes_counts_doubtful() -> None:
    stream = Stream(grams=10 * 250.0, drift_g_per_s=60.0 / 3600.0).hold(3700.0)
    out = Feeder().feed(stream.samples)
    assert moves(out) == []
    first, later = drafts(out, TxnKind.COUNT)
    assert (first.qty, first.confidence >= 0.5) == (10, True)
    assert (later.qty, later.confidence < 0.5) == (10, True)
    assert "the zero has drifted +6" in (later.evidence.note or "")
