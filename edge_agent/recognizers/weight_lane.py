"""One lane's weight, sample by sample: idle at a baseline, changing, or settling on a level.

- start: no stable level seen yet; the first one becomes the baseline (no transaction: the
  weight already on the lane is not a movement; the first COUNT reports it).
- idle: the baseline is the running mean of the samples (a moving mean over `drift_track_s`
  once it holds that many), so it follows temperature drift and creep; the tracked zero moves
  with it, so drift never reads as stock. The lane learns its noise from successive idle
  samples (time constant `noise_track_s`): when that is worse than the profile says, band,
  trigger and counting noise grow with it (up to `noise_ratio_max` x). A sample further than
  the trigger from the baseline, or a moving window (or a STABLE bit off), starts a change.
- changing: wait for a stable level (weight_stability) of the change's own samples.
- settling: average the level until the noise of the change is `level_noise_units` (heavy
  items: at once) and its judgement no doubt, `level_wait_s_max` has passed, or the lane moves
  again; then judge the level minus the baseline (weight_count). A change back to the
  baseline (a hand resting, a knock, a noise spike) ends with nothing; any other ends with a
  `Change`.

Each change of whole units also tells how much the lane's pieces spread: the lane learns that
(`cv_learn_changes`), never below the profile's `piece_weight_cv_pct`.

The zero's uncertainty grows with every change (the levels' own noise, and the drift while the
lane was not idle, at most `drift_g_per_s_max`) and is part of every COUNT's noise; when the
lane is seen empty it is re-zeroed.

After a change (or the first baseline) the lane posts a `Count` once it has been idle for
`count_quiet_s`, then every `count_every_s`. A change that went to review leaves the lane in
doubt (it may hold a foreign item, whose weight could add up with another's to whole units):
its counts are doubtful until the lane weighs nothing. Everything is decided in sample time.
"""

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from device_profiles.shelf import ShelfProfile
from edge_agent.recognizers.weight_count import Judgement, judge
from edge_agent.recognizers.weight_stability import Sample, Window

START, IDLE, CHANGING, SETTLING = "start", "idle", "changing", "settling"
PHASES = (START, IDLE, CHANGING, SETTLING)


@dataclass(frozen=True, slots=True)
class Change:
    start_s: float
    decided_s: float
    settled_s: float
    before_g: float
    after_g: float
    load_after_g: float  # after_g above the tracked zero
    gap_s: float  # samples missing just before the change (a device offline), else 0
    judgement: Judgement  # of after_g - before_g


@dataclass(frozen=True, slots=True)
class Count:
    at_s: float
    load_g: float  # the baseline above the tracked zero
    zero_g: float
    judgement: Judgement  # of load_g
    doubt: bool  # a change since the lane was last empty went to review


LaneEvent = Change | Count


class Lane:
    def __init__(self, shelf: ShelfProfile, unit_g: float, cells: int = 1) -> None:
        self.shelf = shelf
        self.unit_g = unit_g
        self.window = Window(shelf, cells)
        # a plate of n cells sums n cells' noise; the noise measured while idle may be more
        self.noise_g = shelf.noise_sigma_g * math.sqrt(cells)
        self.noise_var_g2 = self.noise_g**2
        self.cv_var = (shelf.piece_weight_cv_pct / 100.0) ** 2  # per piece, learned from changes
        self._trigger_g = shelf.change_trigger_g * math.sqrt(cells)
        self._dt_s = shelf.poll_interval_ms / 1000.0
        self.phase = START
        self.baseline_g = 0.0
        self.baseline_n = 1.0  # samples the baseline averages
        self.zero_g = 0.0  # the transmitter's zero is the empty lane, tracked for drift
        self.zero_var_g2 = 0.0
        self.start_s = 0.0  # of the change under way: its first sample off the baseline
        self.left = False  # a sample of the change has left the baseline by the trigger
        self.near_s: float | None = None  # since when the change's samples are near the baseline
        self.gap_s = 0.0
        self.level_sum_g = 0.0  # the level being settled: sum and count of its samples,
        self.level_n = 0
        self.level_since_s = 0.0  # when it became stable,
        self.level_found_s = 0.0  # and when that was seen
        self.last_s: float | None = None
        self.count_at_s: float | None = None  # when the next COUNT is due
        self.doubt = False  # a change went to review: the lane holds weight we cannot explain

    @property
    def noise_ratio(self) -> float:
        """The noise measured while idle over the profile's, 1 .. noise_ratio_max."""
        ratio = math.sqrt(self.noise_var_g2) / self.noise_g
        return max(1.0, min(self.shelf.noise_ratio_max, ratio))

    @property
    def cv(self) -> float:
        """The spread of one piece's weight: the profile's, or more as changes show."""
        return max(self.shelf.piece_weight_cv_pct / 100.0, math.sqrt(self.cv_var))

    @property
    def trigger_g(self) -> float:
        units_g = self.shelf.change_trigger_units * self.unit_g
        return min(self._trigger_g * self.noise_ratio, units_g)

    def feed(self, sample: Sample) -> list[LaneEvent]:
        """Take one sample (its t_s after the previous one's)."""
        gap_s = 0.0 if self.last_s is None else sample.t_s - self.last_s
        self.last_s = sample.t_s
        self.window.add(sample)
        if self.phase == START:
            self._first_level(sample.t_s)
            return []
        if self.phase == IDLE:
            return self._idle(sample, gap_s)
        if self.phase == SETTLING:
            return self._settling(sample, gap_s)
        self._restart(sample)
        return self._changing(sample.t_s)

    def _restart(self, sample: Sample) -> None:
        """A change starts at its first sample off the baseline: not at a flicker of the
        STABLE bit or a noise spike followed by `change_restart_s` of samples near it."""
        if abs(sample.grams - self.baseline_g) <= self.trigger_g:
            self.near_s = sample.t_s if self.near_s is None else self.near_s
            return
        quiet = self.near_s is not None and sample.t_s - self.near_s >= self.shelf.change_restart_s
        if not self.left or quiet:
            self.left, self.start_s = True, sample.t_s
        self.near_s = None

    def _first_level(self, now_s: float) -> None:
        level = self.window.level()
        if level is not None:
            self.baseline_g, self.baseline_n = level.grams, float(level.samples)
            grams = [s.grams for s in self.window.samples if s.t_s >= level.since_s]
            diffs = [(b - a) ** 2 / 2 for a, b in pairwise(grams)]
            self.noise_var_g2 = max(self.noise_var_g2, sum(diffs) / max(1, len(diffs)))
            self.window.noise_ratio = self.noise_ratio
            self.zero_var_g2 = self._noise2() / level.samples
            self.phase = IDLE
            self.count_at_s = now_s + self.shelf.count_quiet_s

    def _idle(self, sample: Sample, gap_s: float) -> list[LaneEvent]:
        if self._moves(sample, self.baseline_g):
            return self._start(sample, gap_s)
        self._track(sample, gap_s)
        if self.count_at_s is None or sample.t_s < self.count_at_s:
            return []
        self.count_at_s = sample.t_s + self.shelf.count_every_s
        load_g = self.baseline_g - self.zero_g
        noise_g = math.sqrt(self._noise2() / self.baseline_n + self.zero_var_g2)
        judgement = judge(self.shelf, load_g, self.unit_g, noise_g, self.cv)
        return [Count(sample.t_s, load_g, self.zero_g, judgement, self.doubt)]

    def _start(self, sample: Sample, gap_s: float) -> list[LaneEvent]:
        self.phase = CHANGING
        self.start_s = sample.t_s
        self.left = abs(sample.grams - self.baseline_g) > self.trigger_g
        self.near_s = None if self.left else sample.t_s
        self.gap_s = gap_s if gap_s > self.shelf.stable_window_s else 0.0
        return self._changing(sample.t_s)

    def _track(self, sample: Sample, gap_s: float) -> None:
        """Follow slow drift with the baseline and the zero; learn the noise."""
        self.baseline_n = min(self.baseline_n + 1.0, self.shelf.drift_track_s / self._dt_s)
        step = (sample.grams - self.baseline_g) / self.baseline_n
        self.baseline_g += step
        self.zero_g += step
        self._learn_noise(sample, gap_s)

    def _learn_noise(self, sample: Sample, gap_s: float) -> None:
        """From successive samples of a lane at rest (idle, or settling on a level)."""
        samples = self.window.samples
        if len(samples) >= 2 and gap_s <= 2.5 * self._dt_s:
            half_d2 = 0.5 * (sample.grams - samples[-2].grams) ** 2
            alpha = min(1.0, gap_s / self.shelf.noise_track_s)
            self.noise_var_g2 += alpha * (half_d2 - self.noise_var_g2)
        self.window.noise_ratio = self.noise_ratio

    def _moves(self, sample: Sample, level_g: float) -> bool:
        if abs(sample.grams - level_g) > self.trigger_g:
            return True
        if sample.stable is not None and self.shelf.use_stable_bit:
            return not sample.stable
        return self.window.spread_g() > self.window.band_g(level_g)

    def _changing(self, now_s: float) -> list[LaneEvent]:
        level = self.window.level()
        if level is None or level.since_s < self.start_s:  # a level of the change's own samples
            return []
        self.phase = SETTLING
        self.level_sum_g, self.level_n = level.grams * level.samples, level.samples
        self.level_since_s, self.level_found_s = level.since_s, now_s
        return self._settle_when_sure(now_s)

    def _settling(self, sample: Sample, gap_s: float) -> list[LaneEvent]:
        if self._moves(sample, self.level_sum_g / self.level_n):  # the next change begins
            return self._settled(sample.t_s) + self._start(sample, gap_s)
        self.level_sum_g += sample.grams
        self.level_n += 1
        self._learn_noise(sample, gap_s)
        return self._settle_when_sure(sample.t_s)

    def _settle_when_sure(self, now_s: float) -> list[LaneEvent]:
        """Judge the level once its noise is small and the judgement is no doubt; a doubt
        (to review) waits for more samples, up to `level_wait_s_max`."""
        if now_s - self.level_found_s < self.shelf.level_wait_s_max:
            if self._change_noise_g() / self.unit_g > self.shelf.level_noise_units:
                return []
            if not self._judge_level().accepted:
                return []
        return self._settled(now_s)

    def _judge_level(self) -> Judgement:
        delta_g = self.level_sum_g / self.level_n - self.baseline_g
        return judge(self.shelf, delta_g, self.unit_g, self._change_noise_g(), self.cv)

    def _change_noise_g(self) -> float:
        return math.sqrt(self._noise2() * (1.0 / self.baseline_n + 1.0 / self.level_n))

    def _noise2(self) -> float:
        return (self.noise_g * self.noise_ratio) ** 2

    def _settled(self, now_s: float) -> list[LaneEvent]:
        level_g = self.level_sum_g / self.level_n
        noise_g = self._change_noise_g()
        judgement = self._judge_level()
        self.phase = IDLE
        if judgement.qty == 0 and judgement.accepted:  # back where it was: nothing happened
            return []
        self._learn_cv(judgement, noise_g)
        change = Change(
            start_s=self.start_s,
            decided_s=now_s,
            settled_s=self.level_since_s,
            before_g=self.baseline_g,
            after_g=level_g,
            load_after_g=level_g - self.zero_g,
            gap_s=self.gap_s,
            judgement=judgement,
        )
        self.baseline_g, self.baseline_n = level_g, float(self.level_n)
        drift_g = self.shelf.drift_g_per_s_max * (now_s - self.start_s)  # not tracked meanwhile
        self.zero_var_g2 += noise_g**2 + drift_g**2
        self.count_at_s = now_s + self.shelf.count_quiet_s
        empty = judge(self.shelf, change.load_after_g, self.unit_g, noise_g, self.cv)
        if empty.qty == 0 and empty.accepted:  # nothing on the lane: zero it here
            self.zero_g, self.zero_var_g2 = level_g, self._noise2() / self.level_n
            self.doubt = False
        elif not judgement.accepted:
            self.doubt = True
        return [change]

    def _learn_cv(self, judgement: Judgement, noise_g: float) -> None:
        """Each change of whole units within `residual_units_max` tells how much one piece's
        weight spreads: an EMA over `cv_learn_changes`, each clipped at 3 x the spread so far
        (a stray residual cannot widen the tolerance much)."""
        r, n = judgement.residual_units, abs(judgement.qty)
        if n == 0 or abs(r) > self.shelf.residual_units_max:
            return
        piece_var = max(0.0, r * r - (noise_g / self.unit_g) ** 2) / n
        clipped = min(piece_var, 9.0 * self.cv**2)
        self.cv_var += (clipped - self.cv_var) / self.shelf.cv_learn_changes

    # -- snapshot ---------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "baseline": [self.baseline_g, self.baseline_n],
            "zero": [self.zero_g, self.zero_var_g2],
            "noise": self.noise_var_g2,
            "cv": self.cv_var,
            "change": [self.start_s, self.left, self.gap_s, self.near_s],
            "level": [self.level_sum_g, self.level_n, self.level_since_s, self.level_found_s],
            "last": self.last_s,
            "count_at": self.count_at_s,
            "doubt": self.doubt,
            "samples": [s.dump() for s in self.window.samples],
        }

    @classmethod
    def load(cls, shelf: ShelfProfile, unit_g: float, cells: int, row: dict[str, Any]) -> "Lane":
        lane = cls(shelf, unit_g, cells)
        if row["phase"] not in PHASES:
            raise ValueError(f"phase {row['phase']!r}")
        lane.phase = row["phase"]
        lane.baseline_g, lane.baseline_n = _floats(row["baseline"], 2)
        lane.zero_g, lane.zero_var_g2 = _floats(row["zero"], 2)
        lane.noise_var_g2 = _finite(row["noise"])
        lane.cv_var = _finite(row["cv"])
        change = row["change"]
        lane.start_s, left, lane.gap_s = _floats(change[:3], 3)
        lane.left = bool(left)
        lane.near_s = None if change[3] is None else _finite(change[3])
        lane.level_sum_g, level_n, lane.level_since_s, lane.level_found_s = _floats(row["level"], 4)
        lane.level_n = int(level_n)
        if lane.baseline_n < 1.0 or (lane.phase == SETTLING and lane.level_n < 1):
            raise ValueError("a level of no samples")
        lane.last_s = None if row["last"] is None else _finite(row["last"])
        lane.count_at_s = None if row["count_at"] is None else _finite(row["count_at"])
        lane.doubt = bool(row["doubt"])
        samples = [Sample.load(s) for s in row["samples"]]
        if len(samples) > shelf.window_samples_max:
            raise ValueError(f"{len(samples)} samples, more than window_samples_max")
        lane.window.samples.extend(samples)
        lane.window.noise_ratio = lane.noise_ratio
        return lane


def _floats(value: Any, n: int) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        raise ValueError(f"not a list of {n} numbers: {value!r}")
    return [_finite(float(v) if isinstance(v, bool) else v) for v in value]


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)
