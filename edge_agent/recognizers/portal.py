"""The portal recognizer: an RFID dock-door portal's tag reads in, receipts and shipments out.

Pure and clock-injected. Every decision is taken in event time (the reads' `at`): a pass ends
`pass_close_s` after its tag's last read, a load when no tag still in the field could join it.
Event time advances with the reads and, between them, with the injected clock's progress since
the last read (`tick`), so a replay fed faster than real time after a restart takes the same
decisions, and a reader whose clock is off does not matter.

Stray reads: weaker than `rssi_min_dbm`, on a port of no zone, on one zone only (unless the tag
travelled with a load), or stronger on the neighbour door's ports. A tag longer than
`standing_s_max` in the field starts a fresh pass (a staged pallet produces nothing; when it is
later moved through the door, that is a new pass). See portal_tags (direction) and portal_loads.
"""

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from device_profiles.portal import PortalProfile
from edge_agent.readings import Reading, TagRead
from edge_agent.recognizers.base import Clock, Output, Rejected, State, StateError
from edge_agent.recognizers.epc import EpcDecoder
from edge_agent.recognizers.portal_loads import (
    Emitted,
    clusters,
    companions,
    decide,
    load_outputs,
    ready,
)
from edge_agent.recognizers.portal_tags import IN, NEIGHBOUR, OUT, Finished, TagPass

STATE_VERSION = 1
SWEEP_S = 0.1  # event time between two looks for ended passes and complete loads
BAD_EPCS_MAX = 64  # broken EPCs remembered (rejected once each), in the snapshot
VOTE_SLACK_S = 6.0  # tags this much longer in the field than a group still vote on it
RECENT_LOADS_MAX = 4  # emitted loads that tags read late may still join
_WIRE_EPC = re.compile(r"^[0-9A-F]{8,124}$")


@dataclass(slots=True)
class PortalCounters:
    reads: int = 0  # tag reads fed
    strays: int = 0  # reads ignored: too weak, a port of no zone, a bad EPC
    passes: int = 0  # tag passes ended
    crossings: int = 0  # passes that crossed the door
    one_zone: int = 0  # passes seen by one zone only
    unclear: int = 0  # passes seen by both zones in no clear order (standing, reversing)
    joined: int = 0  # ... of these two, tags that travelled with a load
    neighbour: int = 0  # passes seen more strongly by the neighbour door's ports
    standing: int = 0  # passes longer than standing_s_max (restarted)
    evicted: int = 0  # passes ended early: tags_tracked_max reached
    loads: int = 0
    no_crossing: int = 0  # groups of crossing tags whose load as a whole went nowhere
    late: int = 0  # tags that joined a load after its transactions were emitted
    rejoined: int = 0  # crossings seen as two one-zone passes cut by a silence in the doorway
    drafts: int = 0
    rejected: int = 0


class PortalRecognizer:
    """One portal (one reader at one dock door) into TxnDrafts; never raises on input."""

    def __init__(
        self,
        device: str,
        portal: PortalProfile,
        location: str,
        epc_map: Mapping[str, str],
        clock: Clock,
    ) -> None:
        self.device = device
        self.portal = portal
        self.location = location
        self.counters = PortalCounters()
        self._clock = clock
        self._decoder = EpcDecoder(epc_map)
        self._zone = dict.fromkeys(portal.outside_ports, OUT)
        self._zone.update(dict.fromkeys(portal.inside_ports, IN))
        self._zone.update(dict.fromkeys(portal.neighbour_ports, NEIGHBOUR))
        self._tags: dict[str, TagPass] = {}
        self._crossings: list[Finished] = []
        self._ended: list[Finished] = []
        self._recent: list[Emitted] = []
        self._now_s: float | None = None  # event time: the latest read, or later (tick)
        self._swept_s = float("-inf")
        self._fed_clock_s = clock().timestamp()
        self._bad_epcs: set[str] = set()

    # -- Recognizer -------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Output]:
        if not isinstance(reading, TagRead):
            return [Rejected(self.device, repr(reading), "not an RFID tag read", reading.at)]
        self.counters.reads += 1
        self._fed_clock_s = self._clock().timestamp()
        t = reading.at.timestamp()
        out = self._advance(t) if self._now_s is None or t - self._swept_s >= SWEEP_S else []
        if self._now_s is None or t > self._now_s:
            self._now_s = t
        zone = self._zone.get(reading.antenna)
        if zone is None or reading.rssi_dbm < self.portal.rssi_min_dbm:
            self.counters.strays += 1
            return out
        tag = self._tags.get(reading.epc)
        if tag is None or t - tag.last_s >= self.portal.pass_close_s:
            if tag is not None:
                self._end(tag)
            elif not _WIRE_EPC.fullmatch(reading.epc):
                return out + self._bad_epc(reading)
            tag = self._start(reading.epc, t)
        elif t - tag.first_s > self.portal.standing_s_max:
            self.counters.standing += 1
            tag = self._tags[reading.epc] = TagPass(reading.epc, t)
        tag.add(zone, reading.rssi_dbm, t, reading.seen_count, reading.antenna, self.portal)
        if reading.phase_deg is not None:
            tag.add_phase(zone, reading.antenna, reading.phase_deg, t)
        return out

    def tick(self) -> list[Output]:
        if self._now_s is None:
            return []
        since = self._clock().timestamp() - self._fed_clock_s
        return self._advance(self._now_s + max(0.0, since))

    def snapshot(self) -> State:
        """Open passes, ended passes not yet in a load, event time; bounded by tags_tracked_max."""
        return {
            "v": STATE_VERSION,
            "now": self._now_s,
            "swept": None if self._swept_s == float("-inf") else self._swept_s,
            "tags": [tag.dump() for tag in self._tags.values()],
            "crossings": [c.dump() for c in self._crossings],
            "followers": [f.dump() for f in self._ended],
            "recent": [e.dump() for e in self._recent],
            "counters": asdict(self.counters),
            "bad_epcs": sorted(self._bad_epcs),
        }

    def restore(self, state: State) -> None:
        try:
            parsed = _parse_state(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateError(f"portal recognizer {self.device}: {exc!r}") from None
        self._now_s, swept, self._tags, self._crossings, self._ended, recent, counters = parsed[:7]
        self._bad_epcs = parsed[7]
        self._recent = recent
        self._swept_s = float("-inf") if swept is None else swept
        self.counters = counters
        self._fed_clock_s = self._clock().timestamp()

    # -- passes -----------------------------------------------------------------------------

    def _start(self, epc: str, t: float) -> TagPass:
        if len(self._tags) >= self.portal.tags_tracked_max:
            oldest = min(self._tags.values(), key=lambda tag: (tag.last_s, tag.epc))
            self.counters.evicted += 1
            self._end(oldest)
        tag = self._tags[epc] = TagPass(epc, t)
        return tag

    def _end(self, tag: TagPass) -> None:
        del self._tags[tag.epc]
        verdict, score = tag.judge(self.portal)
        c = self.counters
        c.passes += 1
        if verdict in ("in", "out"):
            c.crossings += 1
            self._crossings.append(Finished.of(tag, verdict, score))
        elif verdict == "neighbour":
            c.neighbour += 1
        elif verdict == "unclear":
            c.unclear += 1
            self._ended.append(Finished.of(tag, verdict, score))
        else:
            c.one_zone += 1
            self._one_zone(Finished.of(tag, verdict, score))

    def _one_zone(self, piece: Finished) -> None:
        """A pass one zone saw; if the other zone saw the same tag's previous pass just before,
        the two are one crossing cut by a silence in the doorway."""
        rejoin = self.portal.pass_close_s + self.portal.load_gap_s
        for i in range(len(self._ended) - 1, -1, -1):
            earlier = self._ended[i]
            if earlier.epc != piece.epc or piece.first_s - earlier.last_s > rejoin:
                continue
            crossing = earlier.joined(piece)
            if crossing is not None:  # it joins a load, but starts none: its timing is vague
                self._ended[i] = crossing
                self.counters.rejoined += 1
                return
        self._ended.append(piece)

    def _bad_epc(self, reading: TagRead) -> list[Output]:
        self.counters.strays += 1
        if reading.epc in self._bad_epcs:
            return []
        if len(self._bad_epcs) >= BAD_EPCS_MAX:
            self._bad_epcs.clear()
        self._bad_epcs.add(reading.epc)
        self.counters.rejected += 1
        why = "EPC is not 8..124 upper-case hex digits; its reads are ignored"
        return [Rejected(self.device, repr(reading), why, reading.at)]

    # -- time -------------------------------------------------------------------------------

    def _advance(self, now: float) -> list[Output]:
        """End the passes silent for pass_close_s by `now`, and emit the loads complete by then."""
        self._swept_s = now
        close = self.portal.pass_close_s
        for tag in [tag for tag in self._tags.values() if now - tag.last_s >= close]:
            self._end(tag)
        gap = self.portal.load_gap_s
        groups = clusters(self._crossings, gap, self.portal.load_span_s_max)
        out = self._late(groups)
        bound = self.portal.tags_tracked_max
        for group in groups:
            if ready(group, self._tags.values(), now, gap) or len(self._crossings) > bound:
                out.extend(self._emit(group))
        keep = now - self.portal.standing_s_max
        followers = [f for f in self._ended if f.last_s >= keep]
        self.counters.strays += len(self._ended) - len(followers)
        self._ended = followers[-bound:]
        self._recent = [e for e in self._recent if e.window.last_s >= keep][-RECENT_LOADS_MAX:]
        return out

    def _late(self, groups: list[list[Finished]]) -> list[Output]:
        """Tags that belong to a load already emitted: crossings whose time falls in its
        crossing window, and tags without a direction of their own that moved with it (unless
        a group still pending may take them). `groups` loses the groups taken."""
        if not self._recent:
            return []
        gap, span = self.portal.load_gap_s, self.portal.load_span_s_max
        late: dict[int, list[Finished]] = {}
        for group in list(groups):
            i = next(
                (i for i, e in enumerate(self._recent) if e.takes_group(group, gap, span)), None
            )
            if i is not None:
                late.setdefault(i, []).extend(group)
                groups.remove(group)
        for f in self._ended:
            i = self._taker(f, gap)
            if i is not None and not any(companions(g, (f,), 2.0 * gap) for g in groups):
                late.setdefault(i, []).append(f)
        taken = {id(f) for members in late.values() for f in members}
        self._crossings = [c for c in self._crossings if id(c) not in taken]
        self._ended = [f for f in self._ended if id(f) not in taken]
        out: list[Output] = []
        for i, members in sorted(late.items()):
            e = self._recent[i]
            load = e.late(members)
            self._recent[i] = replace(e, epcs=e.epcs | {m.epc for m in members})
            out.extend(
                load_outputs(load, self.device, self.location, self._decoder, e.load_id, e.epcs)
            )
            self.counters.late += len(members)
        self._count(out)
        return out

    def _taker(self, f: Finished, gap: float) -> int | None:
        span = self.portal.load_span_s_max
        for i in range(len(self._recent) - 1, -1, -1):
            if self._recent[i].takes(f, gap, span):
                return i
        return None

    def _emit(self, group: list[Finished]) -> list[Output]:
        members = {id(c) for c in group}
        self._crossings = [c for c in self._crossings if id(c) not in members]
        others = companions(group, self._ended, VOTE_SLACK_S)
        load = decide(group, others, self.portal)
        c = self.counters
        if load is None:  # its companions stay: they may vote against a neighbouring group too
            c.no_crossing += 1
            return []
        used = {id(f) for f in others}
        self._ended = [f for f in self._ended if id(f) not in used]
        out = load_outputs(load, self.device, self.location, self._decoder)
        self._recent.append(Emitted.of(load, self.device))
        c.joined += sum(m.verdict not in ("in", "out") for m in load.members)
        c.loads += 1
        self._count(out)
        return out

    def _count(self, out: list[Output]) -> None:
        rejected = sum(isinstance(o, Rejected) for o in out)
        self.counters.rejected += rejected
        self.counters.drafts += len(out) - rejected


def _parse_state(
    state: State,
) -> tuple[
    float | None,
    float | None,
    dict[str, TagPass],
    list[Finished],
    list[Finished],
    list[Emitted],
    PortalCounters,
    set[str],
]:
    if state.get("v") != STATE_VERSION:
        raise ValueError(f"state version {state.get('v')!r}, this is {STATE_VERSION}")
    now, swept = _opt_float(state["now"]), _opt_float(state["swept"])
    tags = {tag.epc: tag for tag in (TagPass.load(row) for row in state["tags"])}
    crossings = [Finished.load(row) for row in state["crossings"]]
    followers = [Finished.load(row) for row in state["followers"]]
    recent = [Emitted.load(row) for row in state["recent"]]
    bad_epcs = set(state["bad_epcs"])
    if not all(isinstance(e, str) for e in bad_epcs):
        raise ValueError("bad_epcs")
    saved: dict[str, Any] = state["counters"]
    names = {f.name for f in fields(PortalCounters)}
    if set(saved) != names:
        raise ValueError(f"counters {sorted(saved)}")
    counters = PortalCounters(**{k: int(v) for k, v in saved.items()})
    return now, swept, tags, crossings, followers, recent, counters, bad_epcs


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
