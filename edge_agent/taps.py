"""What the agent's pumps see, folded into telemetry samples (pure: no I/O, no clock of its own).

The agent hands every batch a source yields (after it is journaled) to `Tap.observe`; the
telemetry collector asks for samples with the time it is now:

- `lane_samples(now)`: `lane_weight`, downsampled by event time to the last WeightSample of each
  `lane_weight_interval_s` window (windows aligned on the epoch), emitted once the window has
  ended. A stability flip is emitted at once (the first sample with the new flag, at most one
  per lane per window), so a dashboard sees when a lane settled or was disturbed even when the
  window's last sample has settled again.
- `interval_samples(now)`: `rfid_antenna` per antenna and `scans` per scanner over the interval
  since the previous call, and the readings each device handed over in it. A series, once
  seen, is reported every interval (zeros included) so rates fall to 0 rather than stop.

Everything held is bounded (lanes, antennas, EPCs per antenna, pending lane samples); what goes
past a bound is counted in `dropped` (lane samples) or left untracked.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.readings import EPOCH, Journaled, Scan, TagRead, Unreadable, WeightSample
from stockwire.telemetry import Sample

LANES_TRACKED_MAX = 4096  # lanes of all shelves of one edge
ANTENNAS_PER_DEVICE_MAX = 64
EPCS_PER_ANTENNA_MAX = 10_000  # distinct EPCs counted per antenna and interval ("tags" saturates)
PENDING_LANE_SAMPLES_MAX = 20_000


def flag(value: bool) -> float:
    return 1.0 if value else 0.0


@dataclass(slots=True)
class _Lane:
    window: int
    last: WeightSample
    last_emitted: bool = False
    flipped: bool = False  # a flip of this window was emitted already


@dataclass(slots=True)
class _Antenna:
    reads: int = 0
    entries: int = 0
    rssi_sum: float = 0.0
    rssi_max: float = -math.inf
    epcs: set[str] = field(default_factory=set)

    def add(self, read: TagRead) -> None:
        self.reads += read.seen_count
        if math.isfinite(read.rssi_dbm):
            self.entries += 1
            self.rssi_sum += read.rssi_dbm
            self.rssi_max = max(self.rssi_max, read.rssi_dbm)
        if len(self.epcs) < EPCS_PER_ANTENNA_MAX:
            self.epcs.add(read.epc)

    def fields(self, interval_s: float) -> dict[str, float]:
        out = {
            "reads": float(self.reads),
            "reads_per_s": self.reads / interval_s if interval_s > 0 else 0.0,
            "tags": float(len(self.epcs)),
        }
        if self.entries:  # one RSSI per report entry (readers report the entry's peak)
            out["rssi_dbm_mean"] = self.rssi_sum / self.entries
            out["rssi_dbm_max"] = self.rssi_max
        return out


@dataclass(slots=True)
class _Scans:
    scans: int = 0
    unreadable: int = 0


@dataclass(frozen=True, slots=True)
class IntervalStats:
    readings: dict[str, int]  # device -> readings handed to the journal in the interval
    samples: list[Sample]


class Tap:
    def __init__(self, lane_weight_interval_s: float, started: datetime) -> None:
        assert lane_weight_interval_s > 0
        self._window_s = lane_weight_interval_s
        self._since = started
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._pending: list[Sample] = []
        self._antennas: dict[str, dict[int, _Antenna]] = {}
        self._scans: dict[str, _Scans] = {}
        self._readings: dict[str, int] = {}
        self.dropped = 0  # lane samples dropped past PENDING_LANE_SAMPLES_MAX
        self.untracked = 0  # readings of lanes or antennas past their maximum

    def observe(self, device: str, batch: Sequence[Journaled]) -> None:
        self._readings[device] = self._readings.get(device, 0) + len(batch)
        for reading in batch:
            if isinstance(reading, WeightSample):
                self._weight(reading)
            elif isinstance(reading, TagRead):
                self._tag(reading)
            elif isinstance(reading, Scan):
                self._scans_of(device).scans += 1
            elif isinstance(reading, Unreadable):
                self._scans_of(device).unreadable += 1

    # --- lanes ---------------------------------------------------------------------------------

    def _window(self, at: datetime) -> int:
        return math.floor((at - EPOCH).total_seconds() / self._window_s)

    def _weight(self, sample: WeightSample) -> None:
        key = (sample.device, sample.lane)
        window = self._window(sample.at)
        lane = self._lanes.get(key)
        if lane is None:
            if len(self._lanes) >= LANES_TRACKED_MAX:
                self.untracked += 1
                return
            self._lanes[key] = _Lane(window, sample)
            return
        flipped = _stable(sample) != _stable(lane.last)
        if window != lane.window:
            self._close(lane)
            lane = self._lanes[key] = _Lane(window, sample)
        lane.last, lane.last_emitted = sample, False
        if flipped and not lane.flipped:
            lane.flipped = lane.last_emitted = True
            self._emit(sample)

    def _close(self, lane: _Lane) -> None:
        if not lane.last_emitted:
            lane.last_emitted = True
            self._emit(lane.last)

    def _emit(self, sample: WeightSample) -> None:
        if not math.isfinite(sample.grams):  # not a number on the wire; sources reject these
            return
        if len(self._pending) >= PENDING_LANE_SAMPLES_MAX:
            del self._pending[0]
            self.dropped += 1
        self._pending.append(
            Sample(
                measurement="lane_weight",
                device=sample.device,
                at=sample.at,
                fields={"grams": sample.grams, "stable": flag(_stable(sample))},
                tags={"lane": sample.lane},
            )
        )

    def lane_samples(self, now: datetime) -> list[Sample]:
        """Lane weights of the windows that have ended by `now` (and flips), oldest first."""
        current = self._window(now)
        for lane in self._lanes.values():
            if lane.window < current:
                self._close(lane)
        out, self._pending = self._pending, []
        out.sort(key=lambda s: s.at)
        return out

    # --- antennas and scanners -----------------------------------------------------------------

    def _tag(self, read: TagRead) -> None:
        antennas = self._antennas.setdefault(read.device, {})
        antenna = antennas.get(read.antenna)
        if antenna is None:
            if len(antennas) >= ANTENNAS_PER_DEVICE_MAX:
                self.untracked += 1
                return
            antenna = antennas[read.antenna] = _Antenna()
        antenna.add(read)

    def scanner(self, device: str) -> None:
        """Report `scans` of `device` from now on, before its first scan."""
        self._scans_of(device)

    def _scans_of(self, device: str) -> _Scans:
        return self._scans.setdefault(device, _Scans())

    def interval_samples(self, now: datetime) -> IntervalStats:
        """Antennas, scanners and readings per device since the previous call; starts anew."""
        interval_s = (now - self._since).total_seconds()
        self._since = now
        samples = []
        for device, antennas in self._antennas.items():
            for number in sorted(antennas):
                stats, antennas[number] = antennas[number], _Antenna()
                samples.append(
                    Sample(
                        measurement="rfid_antenna",
                        device=device,
                        at=now,
                        fields=stats.fields(interval_s),
                        tags={"antenna": str(number)},
                    )
                )
        for device, scans in self._scans.items():
            fields = {"scans": float(scans.scans), "unreadable": float(scans.unreadable)}
            samples.append(Sample(measurement="scans", device=device, at=now, fields=fields))
            self._scans[device] = _Scans()
        readings, self._readings = self._readings, {}
        return IntervalStats(readings, samples)


def _stable(sample: WeightSample) -> bool:
    """The catalog's `stable`: the transmitters' STABLE bit, or stable when none is read."""
    return sample.stable is not False
