"""One lane's weight, sample by sample: idle at a baseline, or changing until stable again.

- start: no stable level seen yet; the first one becomes the baseline (no transaction: the
  weight already on the lane is not a movement; the first COUNT reports it).
- idle: the baseline follows the samples with time constant `drift_track_s` (temperature
  drift, creep), and the tracked zero moves with it, so drift never reads as stock. A sample
  further than the trigger from the baseline, or a moving window, starts a change.
- changing: wait for a stable level (weight_stability), then judge the level minus the baseline
  before the change (weight_count). A change that comes back to the baseline (a hand resting, a
  knock, a noise spike) ends with nothing; any other ends with a `Change`.

After a change (or the first baseline) the lane posts a `Count` once it has been idle for
`count_quiet_s`, then every `count_every_s`. A change that went to review leaves the lane in
doubt (it may hold a foreign item, whose weight could add up with another's to whole units):
its counts are doubtful until the lane weighs nothing. Everything is decided in sample time.
"""

import math
from dataclasses import dataclass
from typing import Any

from device_profiles.shelf import ShelfProfile
from edge_agent.recognizers.weight_count import Judgement, judge
from edge_agent.recognizers.weight_stability import Level, Sample, Window

START, IDLE, CHANGING = "start", "idle", "changing"


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
        # a plate of n cells sums n cells' noise
        self.noise_g = shelf.noise_sigma_g * math.sqrt(cells)
        self.trigger_g = min(
            shelf.change_trigger_g * math.sqrt(cells), shelf.change_trigger_units * unit_g
        )
        self.phase = START
        self.baseline_g = 0.0
        self.zero_g = 0.0  # the transmitter's zero is the empty lane, tracked for drift
        self.start_s = 0.0  # of the change under way: its first sample off the baseline
        self.left = False  # a sample of the change has left the baseline by the trigger
        self.gap_s = 0.0
        self.last_s: float | None = None
        self.count_at_s: float | None = None  # when the next COUNT is due
        self.doubt = False  # a change went to review: the lane holds weight we cannot explain

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
        if not self.left and abs(sample.grams - self.baseline_g) > self.trigger_g:
            self.left, self.start_s = True, sample.t_s  # a flicker first, then the real change
        return self._changing(sample.t_s)

    def _first_level(self, now_s: float) -> None:
        level = self.window.level()
        if level is not None:
            self.baseline_g = level.grams
            self.phase = IDLE
            self.count_at_s = now_s + self.shelf.count_quiet_s

    def _idle(self, sample: Sample, gap_s: float) -> list[LaneEvent]:
        if self._moves(sample):
            self.phase = CHANGING
            self.start_s = sample.t_s
            self.left = abs(sample.grams - self.baseline_g) > self.trigger_g
            self.gap_s = gap_s if gap_s > self.shelf.stable_window_s else 0.0
            return self._changing(sample.t_s)
        step = min(1.0, gap_s / self.shelf.drift_track_s) * (sample.grams - self.baseline_g)
        self.baseline_g += step
        self.zero_g += step
        if self.count_at_s is None or sample.t_s < self.count_at_s:
            return []
        self.count_at_s = sample.t_s + self.shelf.count_every_s
        load_g = self.baseline_g - self.zero_g
        noise_g = self.noise_g * math.sqrt(2.0 / self._samples_per_window())
        judgement = judge(self.shelf, load_g, self.unit_g, noise_g)
        return [Count(sample.t_s, load_g, self.zero_g, judgement, self.doubt)]

    def _moves(self, sample: Sample) -> bool:
        if abs(sample.grams - self.baseline_g) > self.trigger_g:
            return True
        if sample.stable is not None and self.shelf.use_stable_bit:
            return not sample.stable
        return self.window.spread_g() > self.window.band_g(self.baseline_g)

    def _changing(self, now_s: float) -> list[LaneEvent]:
        level = self.window.level()
        if level is None or level.since_s < self.start_s:  # a level of the change's own samples
            return []
        return self._settled(level, now_s)

    def _settled(self, level: Level, now_s: float) -> list[LaneEvent]:
        noise_g = self.noise_g * math.sqrt(2.0 / level.samples)
        judgement = judge(self.shelf, level.grams - self.baseline_g, self.unit_g, noise_g)
        self.phase = IDLE
        if judgement.qty == 0 and judgement.accepted:  # back where it was: nothing happened
            return []
        change = Change(
            start_s=self.start_s,
            decided_s=now_s,
            settled_s=level.since_s,
            before_g=self.baseline_g,
            after_g=level.grams,
            load_after_g=level.grams - self.zero_g,
            gap_s=self.gap_s,
            judgement=judgement,
        )
        self.baseline_g = level.grams
        self.count_at_s = now_s + self.shelf.count_quiet_s
        empty = judge(self.shelf, change.load_after_g, self.unit_g, noise_g)
        self.doubt = (self.doubt or not judgement.accepted) and not (
            empty.qty == 0 and empty.accepted
        )
        return [change]

    def _samples_per_window(self) -> int:
        return max(2, round(self.shelf.stable_window_s * 1000.0 / self.shelf.poll_interval_ms))

    # -- snapshot ---------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "baseline": self.baseline_g,
            "zero": self.zero_g,
            "start": self.start_s,
            "left": self.left,
            "gap": self.gap_s,
            "last": self.last_s,
            "count_at": self.count_at_s,
            "doubt": self.doubt,
            "samples": [s.dump() for s in self.window.samples],
        }

    @classmethod
    def load(cls, shelf: ShelfProfile, unit_g: float, cells: int, row: dict[str, Any]) -> "Lane":
        lane = cls(shelf, unit_g, cells)
        if row["phase"] not in (START, IDLE, CHANGING):
            raise ValueError(f"phase {row['phase']!r}")
        lane.phase = row["phase"]
        lane.baseline_g = _finite(row["baseline"])
        lane.zero_g = _finite(row["zero"])
        lane.start_s = _finite(row["start"])
        lane.left = bool(row["left"])
        lane.doubt = bool(row["doubt"])
        lane.gap_s = _finite(row["gap"])
        lane.last_s = None if row["last"] is None else _finite(row["last"])
        lane.count_at_s = None if row["count_at"] is None else _finite(row["count_at"])
        samples = [Sample.load(s) for s in row["samples"]]
        if len(samples) > shelf.window_samples_max:
            raise ValueError(f"{len(samples)} samples, more than window_samples_max")
        lane.window.samples.extend(samples)
        return lane


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)
