"""Portal recognizer accuracy: randomized passes from the portal physics, scored against truth.

    python bench/rfid_accuracy.py                # 10,000 passes at the default noise + a sweep
    python bench/rfid_accuracy.py --passes 500 --sweep 1,2

Sightings become TagReads directly (no LLRP); the recognizer's clock is sim time, ticked every
100 ms. A recognized load is matched to the true pass that shares most of its EPCs; one with
none is a phantom. A pass is exact when exactly one load matched it, in the right direction,
with the true per-GTIN quantities. The delay is sim time from the pass's leave_s to the tick
or read that emitted its transactions.
"""

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import figure, percentile, verdict
from device_profiles.loader import load_profile
from device_profiles.portal import PortalProfile
from edge_agent.readings import TagRead
from edge_agent.recognizers.base import TxnDraft
from edge_agent.recognizers.epc import EpcDecoder, Sgtin
from edge_agent.recognizers.portal import PortalRecognizer
from simulators.portal.noise import NoiseLevel
from simulators.portal.random_passes import RandomRun, random_passes
from stockwire.txn import TxnKind

BASE = datetime(2026, 1, 1, tzinfo=UTC)
TICK_S = 0.1
DEVICE = "portal-1"
TARGET_DIRECTION = 99.9
TARGET_PHANTOM = 0.1
TARGET_EXACT = 99.5
TARGET_DELAY_S = 3.0


@dataclass(slots=True)
class RecognizedLoad:
    kind: TxnKind
    emitted_s: float
    epcs: list[str] = field(default_factory=list)
    gtins: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Score:
    passes: int
    matched: int
    right_direction: int
    phantom: int
    exact: int
    delays_s: tuple[float, ...]
    reads: int
    feed_s: float

    @property
    def direction_pct(self) -> float:
        return 100.0 * self.right_direction / max(1, self.matched)

    @property
    def phantom_pct(self) -> float:
        return 100.0 * self.phantom / max(1, self.passes)

    @property
    def missed(self) -> int:
        return self.passes - self.matched

    @property
    def exact_pct(self) -> float:
        return 100.0 * self.exact / max(1, self.passes)


def recognize(
    run: RandomRun, profile: PortalProfile
) -> tuple[dict[str, RecognizedLoad], int, float]:
    """Feed the run's sightings (ticking sim time) and collect the loads it emits."""
    now = [BASE]
    recognizer = PortalRecognizer(DEVICE, profile, run.door, {}, lambda: now[0])
    reads = [
        TagRead(
            DEVICE, s.epc.hex().upper(), s.antenna, s.rssi_dbm, BASE + timedelta(seconds=s.at_s)
        )
        for s in run.sightings
    ]
    loads: dict[str, RecognizedLoad] = {}
    tick = timedelta(seconds=TICK_S)
    next_tick = BASE + tick
    started = time.perf_counter()
    for read in reads:
        while next_tick <= read.at:
            now[0] = next_tick
            _collect(recognizer.tick(), next_tick, loads)
            next_tick += tick
        now[0] = read.at
        _collect(recognizer.feed(read), read.at, loads)
    end = now[0] + timedelta(seconds=30)
    while next_tick <= end:
        now[0] = next_tick
        _collect(recognizer.tick(), next_tick, loads)
        next_tick += tick
    return loads, len(reads), time.perf_counter() - started


def _at(sim_s: float) -> datetime:
    return BASE + timedelta(seconds=sim_s)


def _collect(outputs: Sequence[object], at: datetime, loads: dict[str, RecognizedLoad]) -> None:
    for o in outputs:
        if not isinstance(o, TxnDraft) or o.load_id is None:
            continue
        load = loads.setdefault(str(o.load_id), RecognizedLoad(o.kind, (at - BASE).total_seconds()))
        load.epcs.extend(o.epcs)
        if o.gtin is not None:
            load.gtins[o.gtin] += o.qty


def score(run: RandomRun, loads: dict[str, RecognizedLoad], reads: int, feed_s: float) -> Score:
    owner = {epc: i for i, p in enumerate(run.passes) for epc in p.epcs}
    matched: dict[int, list[RecognizedLoad]] = {}
    phantom = 0
    for load in loads.values():
        votes = Counter(owner[e] for e in load.epcs if e in owner)
        if not votes:
            phantom += 1
            continue
        matched.setdefault(votes.most_common(1)[0][0], []).append(load)
    decoder = EpcDecoder({})
    right = exact = 0
    delays: list[float] = []
    for i, found in matched.items():
        true = run.passes[i]
        kind = TxnKind.RECEIPT if true.direction == "in" else TxnKind.SHIPMENT
        ok = all(load.kind is kind for load in found)
        right += ok
        delays.extend(load.emitted_s - true.leave_s for load in found)
        want = Counter(d.gtin14 for e in true.epcs if isinstance(d := decoder.decode(e), Sgtin))
        exact += ok and len(found) == 1 and found[0].gtins == want
    return Score(
        len(run.passes), len(matched), right, phantom, exact, tuple(sorted(delays)), reads, feed_s
    )


def run_once(passes: int, noise: NoiseLevel, seed: int, profile: PortalProfile) -> Score:
    run = random_passes(passes, noise, seed)
    loads, reads, feed_s = recognize(run, profile)
    return score(run, loads, reads, feed_s)


def report(s: Score, noise: NoiseLevel) -> None:
    figure("noise scale", f"{noise.scale:g}")
    figure("true passes", f"{s.passes:,}")
    figure("tag reads", f"{s.reads:,}")
    ok = s.direction_pct >= TARGET_DIRECTION
    figure("right direction", f"{s.direction_pct:.3f} %", f"target >= 99.9 %  {verdict(ok)}")
    ok = s.phantom_pct <= TARGET_PHANTOM
    figure(
        "phantom passes", f"{s.phantom} ({s.phantom_pct:.3f} %)", f"target <= 0.1 %  {verdict(ok)}"
    )
    figure("missed passes", f"{s.missed} ({100.0 * s.missed / max(1, s.passes):.3f} %)")
    ok = s.exact_pct >= TARGET_EXACT
    figure("loads exact (per-GTIN qty)", f"{s.exact_pct:.3f} %", f"target >= 99.5 %  {verdict(ok)}")
    p50, p99 = percentile(s.delays_s, 50), percentile(s.delays_s, 99)
    figure("pass -> txn delay p50", f"{p50:.2f} s")
    figure(
        "pass -> txn delay p99", f"{p99:.2f} s", f"target <= 3 s  {verdict(p99 <= TARGET_DELAY_S)}"
    )
    figure("recognizer reads/s (one core)", f"{s.reads / s.feed_s:,.0f}", "target >= 50,000")


def sweep(scales: Sequence[float], passes: int, seed: int, profile: PortalProfile) -> None:
    print(f"\nsweep: {passes:,} passes per noise scale", flush=True)
    print(f"{'scale':>6} {'direction %':>12} {'phantom %':>10} {'missed %':>9} {'exact %':>8}")
    fell: dict[str, float] = {}
    for scale in scales:
        s = run_once(passes, NoiseLevel().scaled(scale), seed, profile)
        missed = 100.0 * s.missed / max(1, s.passes)
        print(
            f"{scale:>6g} {s.direction_pct:>12.3f} {s.phantom_pct:>10.3f} "
            f"{missed:>9.3f} {s.exact_pct:>8.3f}",
            flush=True,
        )
        missed_targets = {
            "direction >= 99.9 %": s.direction_pct < TARGET_DIRECTION,
            "phantom <= 0.1 %": s.phantom_pct > TARGET_PHANTOM,
            "exact >= 99.5 %": s.exact_pct < TARGET_EXACT,
        }
        for name, missed_it in missed_targets.items():
            if missed_it:
                fell.setdefault(name, scale)
    for name in ("direction >= 99.9 %", "phantom <= 0.1 %", "exact >= 99.5 %"):
        where = f"at noise scale {fell[name]:g}" if name in fell else "beyond the sweep"
        print(f"target {name} first missed {where}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise-scale", type=float, default=1.0)
    parser.add_argument("--sweep", default="0.5,1,1.25,1.5,2,3", help="noise scales, or empty")
    parser.add_argument("--sweep-passes", type=int, default=2000)
    parser.add_argument("--profile", default="dock-door-portal")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    if not isinstance(profile, PortalProfile):
        parser.error(f"profile {args.profile} is not an rfid-portal profile")
    noise = NoiseLevel().scaled(args.noise_scale)
    report(run_once(args.passes, noise, args.seed, profile), noise)
    scales = [float(x) for x in args.sweep.split(",") if x.strip()]
    if scales:
        sweep(scales, min(args.sweep_passes, args.passes), args.seed + 1, profile)


if __name__ == "__main__":
    main()
