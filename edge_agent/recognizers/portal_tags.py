"""One tag's pass through a portal: per-zone smoothed RSSI, and which zone saw it first.

Zones are indexed OUT, IN, NEIGHBOUR. For each zone the pass keeps the read count, an EMA of the
RSSI (smoothed against fast fading) and the peak smoothed and raw RSSI. Each read weighs its
smoothed RSSI as an amplitude. The direction score is a weighted Mann-Whitney statistic: of all
(outside read, inside read) pairs, by weight, the share where the outside read came first, minus
the share where it came last. A crossing scores near +1 (in) or -1 (out); a tag standing between
the zones, or one that entered the doorway and went back, scores near 0 (its reads on the side it
came from are both before and after those on the other side). Order, not absolute strength,
decides, so a tag that is weak (orientation, shadowing) on every antenna is judged as well.

RF phase (when reads carry it): phase = 4*pi*d/wavelength, so between two close reads of one
antenna a falling phase means the tag is approaching that antenna. The antennas sit at the door
looking away from it, so an inbound tag approaches the outside antennas and moves away from the
inside ones; each phase step votes +1 (inbound) or -1 (outbound). A pass with phase_reads_min
steps is judged by the mean vote instead of the read order (phase-based methods beat RSS-only
ones). Steps longer than PHASE_STEP_S_MAX are not used: whole turns may hide in them.
"""

from dataclasses import dataclass
from typing import Any, Literal

from device_profiles.portal import PortalProfile

OUT, IN, NEIGHBOUR = 0, 1, 2
ZONE_NAMES = ("outside", "inside", "neighbour")
NO_RSSI = -999.0
PHASE_STEP_S_MAX = 0.05  # a longer step may hide whole phase turns at forklift speed
PHASE_STEP_DEG_MIN = 3.0  # smaller steps are phase noise
JOINED_SCORE = 0.8  # direction score of a pass seen by one zone, then after a silence the other
WEIGHT_DB = 20.0  # a read weighs 10 ** ((smoothed RSSI - rssi_min_dbm) / WEIGHT_DB)

Verdict = Literal["in", "out", "outside", "inside", "neighbour", "unclear"]


class TagPass:
    """Accumulates one tag's reads until the pass ends (silence, standing, eviction)."""

    __slots__ = (
        "antennas",
        "ema",
        "epc",
        "first_s",
        "last_s",
        "n",
        "peak",
        "peak_ema",
        "phase_last",
        "phase_n",
        "phase_sum",
        "tw",
        "u",
        "w",
    )

    def __init__(self, epc: str, first_s: float) -> None:
        self.epc = epc
        self.first_s = first_s
        self.last_s = first_s
        self.n = [0, 0, 0]
        self.ema = [NO_RSSI, NO_RSSI, NO_RSSI]
        self.peak_ema = [NO_RSSI, NO_RSSI, NO_RSSI]
        self.peak = [NO_RSSI, NO_RSSI, NO_RSSI]
        self.tw = [0.0, 0.0, 0.0]  # sum of weight * (t - first_s), for the zone's mean time
        self.w = [0.0, 0.0, 0.0]
        self.u = [0.0, 0.0]  # weight of (outside before inside) pairs, (inside before outside)
        self.antennas: list[int] = []
        self.phase_last: dict[int, tuple[float, float]] = {}  # antenna -> (phase_deg, t_s)
        self.phase_sum = 0
        self.phase_n = 0

    def add(
        self,
        zone: int,
        rssi: float,
        t: float,
        count: int,
        antenna: int,
        profile: PortalProfile,
    ) -> None:
        n = self.n
        if n[zone] == 0:
            smoothed = rssi
        else:
            a = profile.rssi_smoothing_alpha
            smoothed = a * rssi + (1.0 - a) * self.ema[zone]
        self.ema[zone] = smoothed
        n[zone] += count
        if smoothed > self.peak_ema[zone]:
            self.peak_ema[zone] = smoothed
        if rssi > self.peak[zone]:
            self.peak[zone] = rssi
        if t > self.last_s:
            self.last_s = t
        if antenna not in self.antennas:
            self.antennas.append(antenna)
        if zone == NEIGHBOUR:
            return
        weight = count * 10.0 ** ((smoothed - profile.rssi_min_dbm) / WEIGHT_DB)
        if zone == IN:
            self.u[0] += weight * self.w[OUT]
        else:
            self.u[1] += weight * self.w[IN]
        self.tw[zone] += weight * (t - self.first_s)
        self.w[zone] += weight

    def add_phase(self, zone: int, antenna: int, phase_deg: float, t: float) -> None:
        last = self.phase_last.get(antenna)
        self.phase_last[antenna] = (phase_deg, t)
        if last is None or zone == NEIGHBOUR or not 0.0 < t - last[1] <= PHASE_STEP_S_MAX:
            return
        step = (phase_deg - last[0] + 180.0) % 360.0 - 180.0
        if abs(step) < PHASE_STEP_DEG_MIN:
            return
        approaching = step < 0.0
        self.phase_sum += 1 if approaching == (zone == OUT) else -1
        self.phase_n += 1

    def mean_time(self, zone: int) -> float:
        """Power-weighted mean time of the zone's reads (seconds since the epoch)."""
        w = self.w[zone]
        return self.first_s + (self.tw[zone] / w if w > 0.0 else 0.0)

    def judge(self, profile: PortalProfile) -> tuple[Verdict, float]:
        """What this pass was, and its direction score (+1 surely in .. -1 surely out)."""
        n, rmin = self.n, profile.reads_min_per_zone
        ours = max(self.peak_ema[OUT], self.peak_ema[IN])
        if n[NEIGHBOUR] and self.peak_ema[NEIGHBOUR] >= ours + profile.neighbour_margin_db:
            return "neighbour", 0.0
        if n[OUT] < rmin or n[IN] < rmin:
            if n[IN] >= rmin or (n[IN] and not n[OUT]):
                return "inside", 0.0
            return "outside", 0.0
        u = self.u
        score = (u[0] - u[1]) / (u[0] + u[1]) if u[0] + u[1] > 0.0 else 0.0
        if profile.use_phase and self.phase_n >= profile.phase_reads_min:
            score = self.phase_sum / self.phase_n  # phase, where there is enough, is the surer
        if score >= profile.direction_score_min:
            return "in", score
        if score <= -profile.direction_score_min:
            return "out", score
        return "unclear", score

    def dump(self) -> list[Any]:
        phases = [[a, p, t] for a, (p, t) in sorted(self.phase_last.items())]
        return [
            self.epc,
            self.first_s,
            self.last_s,
            self.n,
            self.ema,
            self.peak_ema,
            self.peak,
            self.u,
            self.tw,
            self.w,
            self.antennas,
            phases,
            self.phase_sum,
            self.phase_n,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> "TagPass":
        """The inverse of dump; raises ValueError/TypeError/IndexError on a damaged row."""
        (epc, first_s, last_s, n, ema, peak_ema, peak, u, tw, w) = row[:10]
        antennas, phases, phase_sum, phase_n = row[10:14]
        if len(row) != 14 or not isinstance(epc, str) or len(u) != 2:
            raise ValueError(f"tag state of {len(row)} fields")
        tag = cls(epc, float(first_s))
        tag.last_s = float(last_s)
        tag.u = [float(u[0]), float(u[1])]
        tag.n = _ints(n)
        tag.ema, tag.peak_ema, tag.peak = _floats(ema), _floats(peak_ema), _floats(peak)
        tag.tw, tag.w = _floats(tw), _floats(w)
        tag.antennas = [int(a) for a in antennas]
        tag.phase_last = {int(a): (float(p), float(t)) for a, p, t in phases}
        tag.phase_sum, tag.phase_n = int(phase_sum), int(phase_n)
        return tag


@dataclass(frozen=True, slots=True)
class Finished:
    """A pass that ended as a crossing ("in"/"out") or as one zone only ("outside"/"inside")."""

    epc: str
    verdict: Verdict
    at_s: float  # crossings: between the zones' mean times; one zone: that zone's mean time
    first_s: float
    last_s: float
    reads: tuple[int, int, int]
    peak_dbm: float
    antennas: tuple[int, ...]
    score: float

    @classmethod
    def of(cls, tag: TagPass, verdict: Verdict, score: float) -> "Finished":
        if verdict in ("in", "out"):
            at_s = (tag.mean_time(OUT) + tag.mean_time(IN)) / 2.0
        else:
            at_s = tag.mean_time(IN if verdict == "inside" else OUT)
        return cls(
            epc=tag.epc,
            verdict=verdict,
            at_s=at_s,
            first_s=tag.first_s,
            last_s=tag.last_s,
            reads=(tag.n[OUT], tag.n[IN], tag.n[NEIGHBOUR]),
            peak_dbm=max(tag.peak),
            antennas=tuple(sorted(tag.antennas)),
            score=score,
        )

    def joined(self, later: "Finished") -> "Finished | None":
        """One pass cut in two by a silence in the doorway (the antennas look away from the
        door): seen by one zone, then by the other. None if these are not two such pieces."""
        sides = (self.verdict, later.verdict)
        if sides not in (("outside", "inside"), ("inside", "outside")):
            return None
        inbound = sides[0] == "outside"
        return Finished(
            epc=self.epc,
            verdict="in" if inbound else "out",
            at_s=(self.last_s + later.first_s) / 2.0,
            first_s=self.first_s,
            last_s=later.last_s,
            reads=(
                self.reads[0] + later.reads[0],
                self.reads[1] + later.reads[1],
                self.reads[2] + later.reads[2],
            ),
            peak_dbm=max(self.peak_dbm, later.peak_dbm),
            antennas=tuple(sorted(set(self.antennas) | set(later.antennas))),
            score=JOINED_SCORE if inbound else -JOINED_SCORE,
        )

    def dump(self) -> list[Any]:
        return [
            self.epc,
            self.verdict,
            self.at_s,
            self.first_s,
            self.last_s,
            list(self.reads),
            self.peak_dbm,
            list(self.antennas),
            self.score,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> "Finished":
        epc, verdict, at_s, first_s, last_s, reads, peak, antennas, margin = row
        if verdict not in ("in", "out", "outside", "inside", "unclear") or not isinstance(epc, str):
            raise ValueError(f"finished pass {epc!r}: verdict {verdict!r}")
        out, in_, nb = _ints(reads)
        return cls(
            epc,
            verdict,
            float(at_s),
            float(first_s),
            float(last_s),
            (out, in_, nb),
            float(peak),
            tuple(int(a) for a in antennas),
            float(margin),
        )


def _floats(values: list[Any]) -> list[float]:
    if len(values) != 3:
        raise ValueError(f"{len(values)} zone values, not 3")
    return [float(v) for v in values]


def _ints(values: list[Any]) -> list[int]:
    if len(values) != 3:
        raise ValueError(f"{len(values)} zone values, not 3")
    return [int(v) for v in values]
