"""How fast the portal physics generates random passes, and what it generates, per noise scale.

Prints per scale: passes, seconds, passes/s, sightings (per pass), distractors, tags never read,
and passes whose outside-zone reads are not on average before the inside-zone ones for "in"
(after them for "out"): the physics' own direction signal, which no recognizer should need to beat.

    python bench/portal_generation.py [--passes 10000] [--seed 1] [--scales 1]
"""

import argparse
import resource
import statistics
import time
from collections import defaultdict

from simulators.portal.noise import NoiseLevel
from simulators.portal.random_passes import RandomRun, random_passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    for scale in args.scales:
        t0 = time.perf_counter()
        run = random_passes(args.passes, NoiseLevel().scaled(scale), args.seed)
        seconds = time.perf_counter() - t0
        unread, wrong = _quality(run)
        tags = sum(len(p.epcs) for p in run.passes)
        print(
            f"scale {scale:g}: {len(run.passes)} passes in {seconds:.1f} s "
            f"({len(run.passes) / seconds:.0f} passes/s), {len(run.sightings)} sightings "
            f"({len(run.sightings) / len(run.passes):.0f}/pass), "
            f"{len(run.distractors)} distractors, tags never read {unread}/{tags}, "
            f"direction signal wrong {wrong}/{len(run.passes)}"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss_mb:.0f} MB")


def _quality(run: RandomRun) -> tuple[int, int]:
    by: dict[bytes, list[tuple[float, int]]] = defaultdict(list)
    for s in run.sightings:
        by[s.epc].append((s.at_s, s.antenna))
    outside = set(run.layout.outside_ports)
    unread = wrong = 0
    for p in run.passes:
        reads = [r for e in p.epcs for r in by[bytes.fromhex(e)]]
        unread += sum(1 for e in p.epcs if not by[bytes.fromhex(e)])
        out_t = [t for t, a in reads if a in outside]
        in_t = [t for t, a in reads if a not in outside]
        seen_first_outside = bool(out_t and in_t) and statistics.mean(out_t) < statistics.mean(in_t)
        wrong += not (out_t and in_t) or seen_first_outside != (p.direction == "in")
    return unread, wrong


if __name__ == "__main__":
    main()
