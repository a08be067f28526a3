"""Weight recognizer accuracy: randomized shelf events from the shelf physics, scored against truth.

    python bench/shelf_accuracy.py                  # 10,000 events at the default noise + a sweep
    python bench/shelf_accuracy.py --events 500 --sweep 1,4 --seed 3

Each lane of the run is sampled through the world at the shelf profile's poll interval (10 Hz)
as the edge would poll it: the lane's cells summed, with the transmitters' STABLE bit. The
recognizer's clock is sample time. A transaction is matched to the latest event on its lane that
started by its occurred_at (+ TRIGGER_SLACK_S); one after that event has long settled is a
phantom, and so is any for a hand rest or a knock. COUNTs from the continuous count are scored
apart (against the lane's true pieces at that time; lanes holding a foreign item apart from
clean ones), except the low-confidence COUNT a sub-unit change posts, which belongs to its
change.

An event of the lane's own item (pick, multi-pick, put) is exact when it got one transaction of
the right kind and quantity with confidence >= 0.5; a confident wrong one is a silent wrong count;
one with confidence < 0.5 is flagged (to review). A foreign item is right when flagged. The delay
is sample time from the event's start to the sample that made its transaction. The best any
counter could do is the mean over own-item events of simulators.shelf.random_events.best_count_p.
"""

import argparse
import random
import sys
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import figure, percentile, verdict
from device_profiles.loader import load_profile_of
from device_profiles.shelf import ShelfProfile
from edge_agent.readings import WeightSample
from edge_agent.recognizers.base import TxnDraft
from edge_agent.recognizers.weight import WeightRecognizer
from edge_agent.settings import CellRef, LaneConfig
from simulators.shelf.random_events import (
    EventMix,
    RandomShelfRun,
    ShelfEvent,
    best_count_p,
    random_shelf_events,
)
from stockwire.txn import TxnKind

BASE = datetime(2026, 1, 1, tzinfo=UTC)
DEVICE = "shelf-1"
TRIGGER_SLACK_S = 0.3  # a change may be seen starting this much before its event (noise)
LATE_S_MAX = 10.0  # a transaction this long after its event settled is no longer its
TARGET_EXACT = 99.5
POLL_LATENCY_S_MAX = 0.02  # a Modbus request's round trip, 0..this (RTU at 9600 baud: ~15 ms)
OWN_KINDS = ("pick", "multi-pick", "put")
DEFAULT_MIX = EventMix()


@dataclass(frozen=True, slots=True)
class Emitted:
    lane: str
    emitted_s: float
    draft: TxnDraft

    @property
    def occurred_s(self) -> float:
        return (self.draft.occurred_at - BASE).total_seconds()

    @property
    def sure(self) -> bool:
        return self.draft.confidence >= 0.5


@dataclass(slots=True)
class Score:
    own: int = 0  # events of the lane's own item
    exact: int = 0
    silent_wrong: int = 0  # confident and wrong (own-item events, foreign items, phantoms)
    flagged: int = 0  # own-item events sent to review
    flagged_wrong: int = 0  # ... with a wrong quantity or kind
    missed: int = 0  # own-item or foreign events with no transaction
    foreign: int = 0
    foreign_flagged: int = 0
    disturbances: int = 0  # hand rests and knocks
    phantom: int = 0  # transactions of no event (confident ones also count as silent wrong)
    # continuous COUNTs of lanes clean and of lanes holding a foreign item: posted, confident
    # and equal to the lane's true pieces, confident and not, doubtful (confidence < 0.5)
    counts: dict[str, list[int]] = field(
        default_factory=lambda: {"clean": [0, 0, 0, 0], "foreign": [0, 0, 0, 0]}
    )
    best_p: float = 0.0  # sum over own-item events of the best-counter probability
    delays_s: list[float] = field(default_factory=list)
    samples: int = 0
    feed_s: float = 0.0
    problems: list[str] = field(default_factory=list)  # what went wrong, for --show

    @property
    def exact_pct(self) -> float:
        return 100.0 * self.exact / max(1, self.own)

    @property
    def best_pct(self) -> float:
        return 100.0 * self.best_p / max(1, self.own)


def lane_configs(run: RandomShelfRun) -> list[LaneConfig]:
    return [
        LaneConfig(
            id=spec.id,
            location=spec.location,
            sku=spec.sku,
            unit_weight_g=spec.unit_weight_g,
            cells=tuple(CellRef(unit=c.unit, channel=c.channel) for c in spec.cells),
            pick_to="PACK-1",
        )
        for spec in run.lanes
    ]


def poll_times(duration_s: float, dt_s: float, rng: random.Random) -> list[float]:
    """When the edge's polls answer: every dt_s from the cycle's start, each answer some
    0..POLL_LATENCY_S_MAX later (the request's round trip), so never exactly dt_s apart."""
    count = int(duration_s / dt_s) + 1
    return [i * dt_s + rng.uniform(0.0, POLL_LATENCY_S_MAX) for i in range(count)]


def recognize(
    run: RandomShelfRun, shelf: ShelfProfile, seed: int
) -> tuple[list[Emitted], int, float]:
    """Feed every lane's samples (lane by lane: lanes are independent); what came out, when."""
    now = [BASE]
    recognizer = WeightRecognizer(DEVICE, shelf, lane_configs(run), lambda: now[0])
    world = run.world()
    dt_s = shelf.poll_interval_ms / 1000.0
    times = poll_times(run.duration_s, dt_s, random.Random(seed))
    out: list[Emitted] = []
    feed_s = 0.0
    for spec in run.lanes:
        samples = world.lane_samples(spec.id, times)
        started = time.perf_counter()
        for t_s, grams, stable in samples:
            now[0] = BASE + timedelta(seconds=t_s)
            for o in recognizer.feed(WeightSample(DEVICE, spec.id, grams, now[0], stable)):
                if not isinstance(o, TxnDraft):
                    raise TypeError(f"a sample was rejected: {o}")
                out.append(Emitted(spec.id, t_s, o))
        feed_s += time.perf_counter() - started
    return out, len(times) * len(run.lanes), feed_s


def _is_continuous_count(e: Emitted) -> bool:
    return e.draft.kind is TxnKind.COUNT and e.draft.evidence.weight_before_g is None


def score(run: RandomShelfRun, emitted: list[Emitted]) -> Score:
    s = Score()
    by_lane: dict[str, list[ShelfEvent]] = {}
    for event in run.events:
        by_lane.setdefault(event.lane, []).append(event)
    starts = {lane: [e.at_s for e in events] for lane, events in by_lane.items()}
    matched: dict[int, list[Emitted]] = {}
    for e in emitted:
        if _is_continuous_count(e):
            _score_count(s, run, by_lane.get(e.lane, []), e)
            continue
        i = bisect_right(starts.get(e.lane, []), e.occurred_s + TRIGGER_SLACK_S) - 1
        owner = by_lane[e.lane][i] if i >= 0 else None
        if owner is None or e.occurred_s > owner.settled_s + LATE_S_MAX:
            s.phantom += 1
            s.silent_wrong += e.sure
            s.problems.append(f"phantom on {e.lane}: {_txn(e)}")
            continue
        matched.setdefault(owner.index, []).append(e)
    for event in run.events:
        _score_event(s, event, matched.get(event.index, []), run)
    return s


def _score_event(s: Score, event: ShelfEvent, found: list[Emitted], run: RandomShelfRun) -> None:
    if event.kind in ("hand-rest", "knock"):
        s.disturbances += 1
        s.phantom += len(found)
        s.silent_wrong += sum(e.sure for e in found)
        s.problems.extend(f"{_event(event)}: {_txn(e)}" for e in found)
        return
    if event.kind in OWN_KINDS:
        s.best_p += best_count_p(event, run.noise) or 0.0
    if not found:
        s.missed += 1
        s.own += event.kind in OWN_KINDS
        s.foreign += event.kind == "foreign"
        s.problems.append(f"{_event(event)}: missed")
        return
    if event.kind == "foreign":
        s.foreign += 1
        s.foreign_flagged += not any(e.sure for e in found)
        s.silent_wrong += any(e.sure for e in found)
        s.problems.extend(f"{_event(event)}: {_txn(e)}" for e in found if e.sure)
        return
    s.own += 1
    want = TxnKind.PICK if event.pieces < 0 else TxnKind.RETURN
    sure = [e for e in found if e.sure]
    if not sure:
        s.flagged += 1
        right = len(found) == 1 and found[0].draft.kind is want
        s.flagged_wrong += not (right and found[0].draft.qty == abs(event.pieces))
        s.problems.extend(f"{_event(event)}: flagged {_txn(e)}" for e in found)
    elif len(sure) == 1 and sure[0].draft.kind is want and sure[0].draft.qty == abs(event.pieces):
        s.exact += 1
        s.delays_s.append(sure[0].emitted_s - event.at_s)
        s.phantom += len(found) - 1  # a doubtful extra, sent to review
        s.problems.extend(f"{_event(event)}: extra {_txn(e)}" for e in found if not e.sure)
    else:
        s.silent_wrong += 1
        s.problems.extend(f"{_event(event)}: wrong {_txn(e)}" for e in found)


def _event(e: ShelfEvent) -> str:
    return (
        f"{e.kind} {e.pieces:+d} on {e.lane} at {e.at_s:.2f} s (settled {e.settled_s:.2f},"
        f" {e.grams:+.1f} g, unit {e.unit_weight_g:g} g, cv {100 * e.piece_cv:.2f} %)"
    )


def _txn(e: Emitted) -> str:
    d, ev = e.draft, e.draft.evidence
    return (
        f"{d.kind.value} {d.qty} conf {d.confidence:.3f} at {e.occurred_s:.2f} (emitted"
        f" {e.emitted_s:.2f}) {ev.weight_before_g} -> {ev.weight_after_g} g, residual"
        f" {ev.residual_units}{'; ' + ev.note if ev.note else ''}"
    )


def _score_count(s: Score, run: RandomShelfRun, events: list[ShelfEvent], e: Emitted) -> None:
    spec = next(lane for lane in run.lanes if lane.id == e.lane)
    before = [x for x in events if x.step_s <= e.occurred_s]
    pieces = spec.initial_pieces + sum(x.pieces for x in before)
    tally = s.counts["foreign" if any(x.kind == "foreign" for x in before) else "clean"]
    tally[0] += 1
    if not e.sure:
        tally[3] += 1
        s.problems.append(f"doubtful count on {e.lane}: {pieces} pieces, {_txn(e)}")
    elif e.draft.qty == pieces:
        tally[1] += 1
    else:
        tally[2] += 1
        s.problems.append(f"count on {e.lane}: {pieces} pieces, {_txn(e)}")


def run_once(
    events: int, seed: int, noise: float, shelf: ShelfProfile, mix: EventMix = DEFAULT_MIX
) -> Score:
    run = random_shelf_events(events, seed=seed, noise_scale=noise, mix=mix)
    emitted, samples, feed_s = recognize(run, shelf, seed)
    s = score(run, emitted)
    s.samples, s.feed_s = samples, feed_s
    return s


def report(s: Score, noise: float) -> None:
    figure("noise scale", f"{noise:g}")
    figure("events of lanes' own items", f"{s.own:,}")
    ok = s.exact_pct >= TARGET_EXACT
    figure("counted exactly", f"{s.exact_pct:.3f} %", f"target >= 99.5 %  {verdict(ok)}")
    figure("silent wrong counts", f"{s.silent_wrong}", f"target 0  {verdict(s.silent_wrong == 0)}")
    figure("flagged to review", f"{s.flagged} ({100.0 * s.flagged / max(1, s.own):.3f} %)")
    figure("flagged with a wrong count", f"{s.flagged_wrong}")
    figure("missed events", f"{s.missed}")
    figure("foreign items flagged", f"{s.foreign_flagged} of {s.foreign}")
    figure("phantom transactions", f"{s.phantom} (of {s.disturbances} rests/knocks)")
    p50, p99 = percentile(sorted(s.delays_s), 50), percentile(sorted(s.delays_s), 99)
    figure("event -> txn delay p50", f"{p50:.2f} s")
    figure("event -> txn delay p99", f"{p99:.2f} s")
    figure("best any counter could do", f"{s.best_pct:.3f} %")
    figure("ours / best", f"{s.exact_pct / max(1e-9, s.best_pct):.4f}")
    for lanes, (posted, right, wrong, doubtful) in s.counts.items():
        figure(
            f"counts of {lanes} lanes right",
            f"{right} of {posted}",
            f"silent wrong {wrong}, doubtful (to review) {doubtful}",
        )
    figure("recognizer samples/s (one core)", f"{s.samples / max(1e-9, s.feed_s):,.0f}")


def sweep(scales: Sequence[float], events: int, seed: int, shelf: ShelfProfile) -> None:
    print(f"\nsweep: {events:,} events per noise scale", flush=True)
    print(f"{'scale':>6} {'exact %':>8} {'best %':>8} {'ratio':>7} {'silent':>7} {'flagged %':>10}")
    fell: float | None = None
    for scale in scales:
        s = run_once(events, seed, scale, shelf)
        flagged = 100.0 * s.flagged / max(1, s.own)
        ratio = s.exact_pct / max(1e-9, s.best_pct)
        print(
            f"{scale:>6g} {s.exact_pct:>8.3f} {s.best_pct:>8.3f} {ratio:>7.4f} "
            f"{s.silent_wrong:>7} {flagged:>10.3f}",
            flush=True,
        )
        if fell is None and (s.exact_pct < TARGET_EXACT or s.silent_wrong):
            fell = scale
    where = f"at noise scale {fell:g}" if fell is not None else "beyond the sweep"
    print(f"accuracy (>= 99.5 % exact, 0 silent wrong) first falls {where}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", type=float, default=1.0, help="noise scale of the main run")
    parser.add_argument(
        "--sweep", default="0.5,1,1.5,2,2.5,3,4,6,8", help="noise scales, comma-separated"
    )
    parser.add_argument("--sweep-events", type=int, default=2000)
    parser.add_argument("--profile", default="load-cell-shelf", help="shelf profile name or path")
    parser.add_argument("--show", type=int, default=0, help="print this many problems")
    parser.add_argument(
        "--no-foreign", action="store_true", help="no foreign items (lanes stay countable)"
    )
    args = parser.parse_args(argv)
    shelf = load_profile_of(args.profile, ShelfProfile)
    started = time.perf_counter()
    mix = EventMix(foreign=0.0) if args.no_foreign else DEFAULT_MIX
    s = run_once(args.events, args.seed, args.noise, shelf, mix)
    report(s, args.noise)
    for line in s.problems[: args.show]:
        print(" ", line)
    if args.sweep:
        scales = [float(x) for x in args.sweep.split(",")]
        sweep(scales, args.sweep_events, args.seed, shelf)
    print(f"\n({time.perf_counter() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
