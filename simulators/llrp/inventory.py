"""One enabled ROSpec at work: it folds what its antennas read into TagReportData per
(EPC, antenna) and says when a report is due, per its triggers (LLRP 1.0.1 §7.1, §16.2.4).

Pure: the caller hands in both clocks (`now_s` monotonic for triggers, `utc_us` for the
timestamps in the report) and sends what comes out. With a Null ROSpec stop trigger the AISpecs
run round and round until the ROSpec is stopped, as readers do for continuous inventory.
"""

import math
from dataclasses import dataclass, field

from simulators.llrp import crc
from simulators.llrp.reportspec import (
    TRIGGER_N_OR_END_OF_AISPEC,
    TRIGGER_NONE,
    ContentSelector,
    ReportSpec,
)
from simulators.llrp.rospec import AISpec, AIStopTrigger, ROSpec, StartTrigger, StopTrigger
from simulators.llrp.rospec import TagTriggerType as T
from simulators.llrp.tags import COUNT_MAX, TagReport, phase_units
from simulators.sightings import Sighting

REPORT_TAGS_MAX = 100_000
Report = list[TagReport]


@dataclass(slots=True)
class _Seen:
    first_utc_us: int
    last_utc_us: int
    peak_rssi_dbm: float
    phase_deg: float | None
    count: int = 1


@dataclass(slots=True)
class _Run:
    """The AISpec running now."""

    index: int
    start_s: float
    last_new_s: float
    observations: int = 0
    unique: set[bytes] = field(default_factory=set)


class Inventory:
    def __init__(
        self,
        spec: ROSpec,
        default_report: ReportSpec,
        impinj: bool,
        now_s: float,
        report_tags_max: int = REPORT_TAGS_MAX,
    ) -> None:
        assert report_tags_max > 0, report_tags_max
        self.spec = spec
        self.report = spec.report or default_report
        self.impinj = impinj
        self.report_tags_max = report_tags_max
        self.overflow_tags = 0  # TagReportData dropped because the report buffer was full
        self.events: list[tuple[bool, int]] = []  # (started?, ROSpecID) for ROSpecEvents
        self._pending: dict[tuple[bytes, int], _Seen] = {}
        self._run: _Run | None = None
        self._rospec_start_s = 0.0
        self._next_start_s: float | None = None
        if spec.start_trigger == StartTrigger.Immediate:
            self._next_start_s = now_s
        elif spec.start_trigger == StartTrigger.Periodic:
            self._next_start_s = now_s + spec.offset_ms / 1000

    @property
    def active(self) -> bool:
        return self._run is not None

    def reads(self, antenna: int) -> bool:
        """Whether the AISpec running now reads this antenna port."""
        if self._run is None:
            return False
        antennas = self.spec.ai_specs[self._run.index].antennas
        return not antennas or antenna in antennas

    def start(self, now_s: float) -> None:
        if self._run is None:
            self._rospec_start_s = now_s
            self._run = _Run(0, now_s, now_s)
            self.events.append((True, self.spec.id))

    def stop(self, now_s: float) -> list[Report]:
        """The ROSpec ends (STOP/DISABLE/DELETE or its stop trigger): the last reports."""
        if self._run is None:
            return []
        self._run = None
        self.events.append((False, self.spec.id))
        if self.spec.start_trigger == StartTrigger.Periodic and self.spec.period_ms:
            self._next_start_s = self._rospec_start_s + self.spec.period_ms / 1000
        return self._flush() if self.report.trigger != TRIGGER_NONE else []

    def flush(self) -> list[Report]:
        """GET_REPORT: whatever is pending."""
        return self._flush()

    def sight(self, s: Sighting, utc_us: int, now_s: float) -> list[Report]:
        """Fold one read in; call `tick(now_s)` first so that time-triggers come before it."""
        run = self._run
        assert run is not None, s
        assert self.reads(s.antenna), s
        self._fold(s, utc_us)
        run.observations += 1
        if self._counts_unique(run) and s.epc not in run.unique:
            run.unique.add(s.epc)  # bounded: only for triggers that end the run on unique tags
            run.last_new_s = now_s
        n = self.report.n
        if self.report.trigger != TRIGGER_NONE and n and len(self._pending) >= n:
            return self._flush()
        if self._tags_enough(run):
            return self._next_ai(now_s)
        return []

    def _fold(self, s: Sighting, utc_us: int) -> None:
        key = (s.epc, s.antenna)
        seen = self._pending.get(key)
        if seen is not None:
            seen.last_utc_us = utc_us
            seen.count += 1
            seen.peak_rssi_dbm = max(seen.peak_rssi_dbm, s.rssi_dbm)
            seen.phase_deg = s.phase_deg
        elif len(self._pending) < self.report_tags_max:
            self._pending[key] = _Seen(utc_us, utc_us, s.rssi_dbm, s.phase_deg)
        else:
            self.overflow_tags += 1

    def tick(self, now_s: float) -> list[Report]:
        """Reports the time triggers make due by `now_s`."""
        if self._run is None:
            if self._next_start_s is not None and now_s >= self._next_start_s:
                start_s, self._next_start_s = self._next_start_s, None
                self.start(start_s)
            else:
                return []
        reports: list[Report] = []
        while self._run is not None:
            rospec_end_s = self._rospec_end_s()
            ai_end_s = self._ai_deadline(self._run)
            if (
                rospec_end_s is not None
                and now_s >= rospec_end_s
                and (ai_end_s is None or rospec_end_s <= ai_end_s)
            ):
                return reports + self.stop(rospec_end_s)
            if ai_end_s is None or now_s < ai_end_s:
                return reports
            reports += self._next_ai(ai_end_s)
        return reports

    def _next_ai(self, at_s: float) -> list[Report]:
        """The AISpec running now ends at `at_s`; the next one (or the first again) starts."""
        assert self._run is not None
        reports = self._flush() if self.report.trigger == TRIGGER_N_OR_END_OF_AISPEC else []
        index = (self._run.index + 1) % len(self.spec.ai_specs)
        self._run = _Run(index, at_s, at_s)
        return reports

    def next_deadline_s(self) -> float | None:
        """When `tick` may have something to do next (None: only sightings can change it)."""
        if self._run is None:
            return self._next_start_s
        times = [self._ai_deadline(self._run), self._rospec_end_s()]
        return min((t for t in times if t is not None), default=None)

    def _rospec_end_s(self) -> float | None:
        if self.spec.stop_trigger != StopTrigger.Duration:
            return None
        return self._rospec_start_s + self.spec.duration_ms / 1000

    def _counts_unique(self, run: _Run) -> bool:
        ai = self.spec.ai_specs[run.index]
        trig = ai.tag_trigger
        if ai.stop_trigger != AIStopTrigger.TagObservation or trig is None:
            return False
        return trig.type in (T.No_New_Tags, T.N_Unique_Tags, T.N_Unique_Tags_Or_No_New)

    def _tags_enough(self, run: _Run) -> bool:
        ai = self.spec.ai_specs[run.index]
        trig = ai.tag_trigger
        if ai.stop_trigger != AIStopTrigger.TagObservation or trig is None or not trig.n_tags:
            return False
        if trig.type == T.N_Tags:
            return run.observations >= trig.n_tags
        if trig.type in (T.N_Unique_Tags, T.N_Unique_Tags_Or_No_New):
            return len(run.unique) >= trig.n_tags
        return False

    def _ai_deadline(self, run: _Run) -> float | None:
        ai: AISpec = self.spec.ai_specs[run.index]
        if ai.stop_trigger == AIStopTrigger.Duration and ai.duration_ms:
            return run.start_s + ai.duration_ms / 1000
        trig = ai.tag_trigger
        if ai.stop_trigger != AIStopTrigger.TagObservation or trig is None:
            return None
        times = []
        if trig.timeout_ms:
            times.append(run.start_s + trig.timeout_ms / 1000)
        if trig.type in (T.No_New_Tags, T.N_Unique_Tags_Or_No_New) and trig.t_ms:
            times.append(run.last_new_s + trig.t_ms / 1000)
        return min(times, default=None)

    def _flush(self) -> list[Report]:
        if not self._pending:
            return []
        pending, self._pending = self._pending, {}
        index = self._run.index if self._run else 0
        ai = self.spec.ai_specs[index]
        tags = [self._tag(epc, ant, seen, index, ai) for (epc, ant), seen in pending.items()]
        return [tags]

    def _tag(self, epc: bytes, antenna: int, seen: _Seen, index: int, ai: AISpec) -> TagReport:
        sel: ContentSelector = self.report.selector
        pc = crc.pc_bits(epc)
        return TagReport(
            epc=epc,
            rospec_id=self.spec.id if sel.rospec_id else None,
            spec_index=index + 1 if sel.spec_index else None,
            inventory_parameter_spec_id=(
                ai.inventory_parameter_spec_id if sel.inventory_parameter_spec_id else None
            ),
            antenna_id=antenna if sel.antenna_id else None,
            peak_rssi_dbm=_int8(seen.peak_rssi_dbm) if sel.peak_rssi else None,
            channel_index=1 if sel.channel_index else None,
            first_seen_utc_us=seen.first_utc_us if sel.first_seen else None,
            last_seen_utc_us=seen.last_utc_us if sel.last_seen else None,
            tag_seen_count=min(seen.count, COUNT_MAX) if sel.tag_seen_count else None,
            pc_bits=pc if sel.pc_bits else None,
            crc=crc.epc_crc(pc, epc) if sel.crc else None,
            access_spec_id=0 if sel.access_spec_id else None,
            impinj_phase=self._phase(seen.phase_deg, sel),
            impinj_peak_rssi_cdbm=(
                round(seen.peak_rssi_dbm * 100) if self.impinj and sel.impinj_peak_rssi else None
            ),
        )

    def _phase(self, phase_deg: float | None, sel: ContentSelector) -> int | None:
        if not (self.impinj and sel.impinj_phase) or phase_deg is None:
            return None
        return phase_units(phase_deg)


def _int8(dbm: float) -> int:
    return max(-128, min(127, math.floor(dbm + 0.5)))
