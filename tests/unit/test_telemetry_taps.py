"""The edge's telemetry aggregation (edge_agent/taps.py) and queue, no I/O: times are given."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.readings import Scan, TagRead, Unreadable, WeightSample
from edge_agent.taps import EPCS_PER_ANTENNA_MAX, Tap
from edge_agent.telemetry_queue import SampleQueue, payloads, series
from stockwire.telemetry import Sample, TelemetryBatch

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)  # on a 5 s window boundary


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def weight(s: float, grams: float, stable: bool | None = True, lane: str = "L1") -> WeightSample:
    return WeightSample("shelf1", lane, grams, at(s), stable)


def tag(epc: str, antenna: int, rssi: float, count: int = 1) -> TagRead:
    return TagRead("door1", epc, antenna, rssi, T0, seen_count=count)


def lanes(samples: list[Sample]) -> list[tuple[str, float, float, float]]:
    return [
        (s.tags["lane"], (s.at - T0).total_seconds(), s.fields["grams"], s.fields["stable"])
        for s in samples
    ]


# --- lane weights --------------------------------------------------------------------------


def test_lane_weight_is_the_last_sample_of_each_window_once_it_has_ended() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(0.5, 100.0), weight(1.0, 101.0), weight(4.5, 102.0)])
    tap.observe("shelf1", [weight(5.2, 200.0), weight(9.0, 201.0)])
    assert lanes(tap.lane_samples(at(9.5))) == [("L1", 4.5, 102.0, 1.0)]
    assert tap.lane_samples(at(9.9)) == []  # the second window has not ended
    assert lanes(tap.lane_samples(at(10.0))) == [("L1", 9.0, 201.0, 1.0)]
    assert tap.lane_samples(at(20.0)) == []  # emitted once


def test_each_lane_is_its_own_series_and_samples_come_out_in_time_order() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(1.0, 5.0, lane="B"), weight(2.0, 7.0, lane="A")])
    tap.observe("shelf1", [weight(3.0, 6.0, lane="B")])
    out = tap.lane_samples(at(5.0))
    assert lanes(out) == [("A", 2.0, 7.0, 1.0), ("B", 3.0, 6.0, 1.0)]
    assert all(s.measurement == "lane_weight" and s.device == "shelf1" for s in out)


def test_a_stability_flip_is_emitted_at_once_at_most_once_per_window() -> None:
    tap = Tap(5.0, T0)
    tap.observe(
        "shelf1",
        [
            weight(0.0, 100.0, True),
            weight(1.0, 80.0, False),  # flip: emitted at once
            weight(2.0, 60.0, True),  # second flip in the window: folded into the last
            weight(3.0, 60.0, True),
        ],
    )
    assert lanes(tap.lane_samples(at(4.0))) == [("L1", 1.0, 80.0, 0.0)]
    assert lanes(tap.lane_samples(at(5.0))) == [("L1", 3.0, 60.0, 1.0)]


def test_a_flip_that_opens_a_window_counts_and_is_not_sent_twice() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(4.0, 100.0, True), weight(6.0, 50.0, False)])
    assert lanes(tap.lane_samples(at(7.0))) == [("L1", 4.0, 100.0, 1.0), ("L1", 6.0, 50.0, 0.0)]
    assert tap.lane_samples(at(10.0)) == []  # the flip was the window's last sample


def test_no_stable_bit_reads_as_stable() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(1.0, 10.0, None), weight(2.0, 11.0, True)])
    assert lanes(tap.lane_samples(at(5.0))) == [("L1", 2.0, 11.0, 1.0)]  # no flip between


# --- RFID antennas -------------------------------------------------------------------------


def antenna_fields(tap: Tap, now: datetime) -> dict[str, dict[str, float]]:
    stats = tap.interval_samples(now)
    return {s.tags["antenna"]: s.fields for s in stats.samples if s.measurement == "rfid_antenna"}


def test_antenna_reads_rate_tags_and_rssi() -> None:
    tap = Tap(5.0, T0)
    tap.observe(
        "door1",
        [
            tag("E1", 1, -60.0, count=3),
            tag("E2", 1, -50.0),
            tag("E1", 1, -70.0),
            tag("E9", 2, -40.0),
        ],
    )
    got = antenna_fields(tap, at(10.0))
    assert got["1"] == {
        "reads": 5.0,  # seen counts folded in
        "reads_per_s": 0.5,
        "tags": 2.0,
        "rssi_dbm_mean": -60.0,  # one RSSI per report entry
        "rssi_dbm_max": -50.0,
    }
    assert got["2"]["reads"] == 1.0
    assert got["2"]["rssi_dbm_max"] == -40.0


def test_an_antenna_once_seen_reports_zero_reads_without_rssi() -> None:
    tap = Tap(5.0, T0)
    tap.observe("door1", [tag("E1", 4, -55.0)])
    antenna_fields(tap, at(10.0))
    assert antenna_fields(tap, at(12.0)) == {"4": {"reads": 0.0, "reads_per_s": 0.0, "tags": 0.0}}


def test_reads_per_s_uses_the_length_of_each_interval() -> None:
    tap = Tap(5.0, T0)
    tap.observe("door1", [tag("E1", 1, -55.0, count=8)])
    assert antenna_fields(tap, at(2.0))["1"]["reads_per_s"] == 4.0
    tap.observe("door1", [tag("E1", 1, -55.0, count=8)])
    assert antenna_fields(tap, at(6.0))["1"]["reads_per_s"] == 2.0


def test_distinct_tags_saturate_at_their_maximum() -> None:
    tap = Tap(5.0, T0)
    reads = [tag(f"E{i}", 1, -50.0) for i in range(EPCS_PER_ANTENNA_MAX + 5)]
    tap.observe("door1", reads)
    got = antenna_fields(tap, at(1.0))["1"]
    assert got["tags"] == EPCS_PER_ANTENNA_MAX
    assert got["reads"] == EPCS_PER_ANTENNA_MAX + 5


# --- scanners and readings per device ------------------------------------------------------


def test_scans_unreadable_and_readings_per_device() -> None:
    tap = Tap(5.0, T0)
    tap.observe(
        "scan1",
        [Scan("scan1", "A", T0), Scan("scan1", "B", T0), Unreadable("scan1", "x", "long", T0)],
    )
    tap.observe("door1", [tag("E1", 1, -50.0)])
    stats = tap.interval_samples(at(10.0))
    assert stats.readings == {"scan1": 3, "door1": 1}
    scans = [s for s in stats.samples if s.measurement == "scans"]
    assert [(s.device, s.fields) for s in scans] == [("scan1", {"scans": 2.0, "unreadable": 1.0})]
    again = tap.interval_samples(at(20.0))
    assert again.readings == {}
    assert [s.fields for s in again.samples if s.measurement == "scans"] == [
        {"scans": 0.0, "unreadable": 0.0}
    ]


def test_a_scanner_announced_reports_zero_scans_before_its_first() -> None:
    tap = Tap(5.0, T0)
    tap.scanner("scan9")
    [sample] = tap.interval_samples(at(10.0)).samples
    assert (sample.measurement, sample.device) == ("scans", "scan9")
    assert sample.fields == {"scans": 0.0, "unreadable": 0.0}


def test_values_that_are_not_numbers_never_reach_a_sample() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(1.0, math.nan), weight(6.0, 5.0)])
    tap.observe("door1", [tag("E1", 1, math.nan), tag("E2", 1, -50.0)])
    assert lanes(tap.lane_samples(at(10.0))) == [("L1", 6.0, 5.0, 1.0)]
    fields = antenna_fields(tap, at(10.0))["1"]
    assert (fields["reads"], fields["rssi_dbm_mean"]) == (2.0, -50.0)


def test_every_sample_the_tap_makes_is_valid_on_the_wire() -> None:
    tap = Tap(5.0, T0)
    tap.observe("shelf1", [weight(1.0, 10.0, False)])
    tap.observe("door1", [tag("E1", 1, -50.0)])
    tap.observe("scan1", [Scan("scan1", "A", T0)])
    samples = tap.lane_samples(at(5.0)) + tap.interval_samples(at(5.0)).samples
    assert {s.measurement for s in samples} == {"lane_weight", "rfid_antenna", "scans"}
    batch = TelemetryBatch(edge="edge1", samples=tuple(samples))
    assert TelemetryBatch.model_validate_json(batch.model_dump_json()) == batch


# --- the queue: bounded, thinned, batched --------------------------------------------------


def point(n: int, lane: str = "L1") -> Sample:
    return Sample(
        measurement="lane_weight",
        device="shelf1",
        at=at(n),
        fields={"grams": float(n), "stable": 1.0},
        tags={"lane": lane},
    )


def test_queue_under_its_maximum_keeps_everything_in_order() -> None:
    queue = SampleQueue(10)
    queue.put(point(i) for i in range(10))
    assert queue.thinned == 0
    assert [s.fields["grams"] for s in queue.take(4)] == [0, 1, 2, 3]
    assert len(queue) == 6


def test_a_full_queue_thins_every_other_sample_of_each_series_in_the_oldest_half() -> None:
    queue = SampleQueue(12)
    queue.put(point(i, lane) for i in range(8) for lane in ("A", "B"))  # 16 samples
    kept = queue.take(100)
    assert len(kept) == 12
    assert queue.thinned == 4
    oldest_half = [(s.tags["lane"], s.fields["grams"]) for s in kept[:4]]
    assert oldest_half == [("A", 0), ("B", 0), ("A", 2), ("B", 2)]  # each lane keeps half
    assert [s.at for s in kept] == sorted(s.at for s in kept)
    assert {s.tags["lane"] for s in kept[4:]} == {"A", "B"}


def test_thinning_repeats_until_the_queue_fits_and_counts_every_drop() -> None:
    queue = SampleQueue(5)
    queue.put(point(i) for i in range(100))
    kept = queue.take(100)
    assert len(kept) <= 5
    assert queue.thinned == 100 - len(kept)
    assert kept[-1].fields["grams"] == 99  # the newest sample survives
    grams = [s.fields["grams"] for s in kept]
    assert grams == sorted(grams)


def test_one_sample_per_series_falls_back_to_dropping_the_oldest() -> None:
    queue = SampleQueue(3)
    queue.put(point(0, lane=f"L{i}") for i in range(5))
    assert [s.tags["lane"] for s in queue.take(10)] == ["L2", "L3", "L4"]
    assert queue.thinned == 2


def test_queue_of_one() -> None:
    queue = SampleQueue(1)
    queue.put([point(1), point(2)])
    queue.put([point(3)])
    assert [s.fields["grams"] for s in queue.take(10)] == [3]
    assert queue.thinned == 2


def test_put_signals_ready() -> None:
    queue = SampleQueue(4)
    assert not queue.ready.is_set()
    queue.put([point(1)])
    assert queue.ready.is_set()


def test_series_key_tells_lanes_apart() -> None:
    assert series(point(1, "A")) != series(point(1, "B"))
    assert series(point(1, "A")) == series(point(2, "A"))


@pytest.mark.parametrize("count", [1, 7, 40])
def test_payloads_fit_the_size_limit_and_keep_every_sample_in_order(count: int) -> None:
    samples = [point(i) for i in range(count)]
    one = len(payloads("edge1", samples[:1], 10**6)[0])
    out = payloads("edge1", samples, one * 3)
    assert all(len(p) <= one * 3 for p in out)
    got = [s for p in out for s in TelemetryBatch.model_validate_json(p).samples]
    assert got == samples
    assert len(payloads("edge1", samples, 10**7)) == 1
