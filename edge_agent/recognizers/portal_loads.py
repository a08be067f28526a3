"""Loads: tags that cross a portal together, and the receipts/shipments a load becomes.

Crossings whose crossing times are within `load_gap_s` of each other form one load. Tags that
moved with them but have no clear direction of their own join it: read by one zone only (a metal
case shading one side) on the side the load came from before it crossed or on the side it went
to after, or read by both zones in no clear order. The load's direction is the mean direction
score over its tags, so a load that reversed in the doorway is no crossing even if a few of its
tags looked like one. A load becomes one TxnDraft per GTIN (or
mapped SKU) with its EPCs, one draft of unknown EPCs at confidence 0 (the ledger holds those for
review), and its SSCCs as containers in the evidence. A load of pallet tags only (no item read)
becomes a Rejected output naming the SSCCs: nothing to post, but nobody loses it.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from device_profiles.portal import PortalProfile
from edge_agent.recognizers.base import Output, Rejected, TxnDraft
from edge_agent.recognizers.epc import EpcDecoder, Mapped, Sgtin, Sscc
from edge_agent.recognizers.portal_tags import IN, NEIGHBOUR, OUT, ZONE_NAMES, Finished, TagPass
from edge_agent.recognizers.scan import wire_problem
from stockwire.txn import Evidence, TxnKind

LOAD_NAMESPACE = uuid.UUID("6f0c8e52-3c1e-5b8a-9d57-2f1b0c4e7a10")
UNKNOWN_SKU = "UNKNOWN-EPC"
CONTAINERS_MAX = 100  # the wire contract bound on Evidence.containers
CUT_GAP_S_MIN = 0.6  # a gap this wide between crossings cuts a load in two whatever its span
WEAK_READS_MIN = 3  # reads a tag weaker than its load floor needs to be on it


@dataclass(frozen=True, slots=True)
class Window:
    """When a load was at the door: its crossings' first read, crossing times and last read."""

    first_s: float
    c0: float
    c1: float
    last_s: float

    @classmethod
    def of(cls, group: Sequence[Finished]) -> "Window":
        first = min(c.first_s for c in group)
        return cls(first, group[0].at_s, group[-1].at_s, max(c.last_s for c in group))

    def holds(self, f: Finished, slack_s: float) -> bool:
        """`f` was in the field only while the load was (give or take `slack_s`)."""
        return f.first_s >= self.first_s - slack_s and f.last_s <= self.last_s + slack_s


@dataclass(frozen=True, slots=True)
class Load:
    direction: str  # "in" (receipt) or "out" (shipment)
    members: tuple[Finished, ...]  # crossings, then the tags that travelled with them
    confidence: float
    window: Window
    floor_dbm: float  # weaker tags need WEAK_READS_MIN reads (and good timing) to be on it

    @property
    def first_s(self) -> float:
        return min(m.first_s for m in self.members)

    @property
    def last_s(self) -> float:
        return max(m.last_s for m in self.members)

    def load_id(self, device: str) -> uuid.UUID:
        first = _time(self.first_s).isoformat()
        return uuid.uuid5(LOAD_NAMESPACE, f"{device}|{first}|{min(m.epc for m in self.members)}")


def clusters(
    crossings: Iterable[Finished], gap_s: float, span_s_max: float
) -> list[list[Finished]]:
    """Crossings grouped by crossing time (either direction: one door, one forklift at a time);
    a group longer than `span_s_max` is two loads close together, cut at its widest gap."""
    groups: list[list[Finished]] = []
    for c in sorted(crossings, key=_cross_key):
        if groups and c.at_s - groups[-1][-1].at_s <= gap_s:
            groups[-1].append(c)
        else:
            groups.append([c])
    return [part for group in groups for part in _cut(group, span_s_max)]


def _cut(group: list[Finished], span_s_max: float) -> list[list[Finished]]:
    """Cut where the two parts' crossing times are farthest apart for their sizes (Otsu), when
    the group is longer than a load or the gap there is wider than within a load."""
    if len(group) < 2:
        return [group]
    times = [c.at_s for c in group]
    total, n = sum(times), len(times)
    best, cut, left = -1.0, 1, 0.0
    for i in range(1, n):
        left += times[i - 1]
        between = i * (n - i) * (left / i - (total - left) / (n - i)) ** 2
        if between > best:
            best, cut = between, i
    if times[-1] - times[0] <= span_s_max and times[cut] - times[cut - 1] < CUT_GAP_S_MIN:
        return [group]
    return _cut(group[:cut], span_s_max) + _cut(group[cut:], span_s_max)


def ready(group: Sequence[Finished], active: Iterable[TagPass], now_s: float, gap_s: float) -> bool:
    """No tag still in the field could still join this group: one seen by both zones whose
    crossing time so far is within the group's reach, or one seen by one zone that started with
    the group and has not been read since the group crossed. (A tag still read after that, on
    the side the load went to, joins the load late: see Emitted.)"""
    end = group[-1].at_s + gap_s
    if now_s < end:
        return False
    start = min(c.first_s for c in group) - gap_s
    for tag in active:
        if tag.first_s > end:
            continue
        if tag.w[OUT] > 0.0 and tag.w[IN] > 0.0:
            if (tag.mean_time(OUT) + tag.mean_time(IN)) / 2.0 <= end:
                return False
        elif tag.first_s >= start and tag.last_s <= end:
            return False
    return True


def companions(
    group: Sequence[Finished], ended: Iterable[Finished], slack_s: float
) -> list[Finished]:
    """Passes without a direction of their own that were in the field with the group only,
    give or take `slack_s` (a pallet standing there all along is not one of them)."""
    window = Window.of(group)
    return [f for f in ended if window.holds(f, slack_s)]


def decide(
    group: Sequence[Finished], others: Sequence[Finished], profile: PortalProfile
) -> Load | None:
    """The group's load: direction by the mean score over every tag that moved with it (a tag
    that went nowhere counts 0, so a load that mostly reversed is no crossing; a tag below the
    load's floor, likely another door's, has no vote); tags much weaker
    than the load's median peak (another door's traffic) need more reads and good timing, and a
    load whose strongest tag is weaker than load_peak_rssi_min_dbm crossed the neighbour door."""
    if max(c.peak_dbm for c in group) < profile.load_peak_rssi_min_dbm:
        return None
    peaks = sorted(c.peak_dbm for c in group)
    floor = peaks[len(peaks) // 2] - profile.load_rssi_spread_db
    voters = [*group, *(o for o in others if o.peak_dbm >= floor)]
    mean = sum(v.score for v in voters) / len(voters)
    if abs(mean) < profile.load_score_min:
        return None
    direction = "in" if mean > 0 else "out"
    window, gap = Window.of(group), profile.load_gap_s
    members = [*group, *(o for o in others if fits(o, window, direction, floor, gap))]
    # a load that passes load_score_min is at least 0.5 (it posts), a unanimous one 1.0
    least = profile.load_score_min
    confidence = round(min(1.0, 0.5 + 0.5 * (abs(mean) - least) / (1.0 - least)), 3)
    if not members:
        return None
    return Load(direction, tuple(members), confidence, window, floor)


def fits(f: Finished, w: Window, direction: str, floor_dbm: float, gap_s: float) -> bool:
    """A tag without a direction of its own on a load: in the field only while the load was;
    seen by one zone on the side the load came from before it crossed, or on the side it went
    to after; a weak tag also needs reads, on two antennas at least, that end (or start) at
    the crossing."""
    weak = f.peak_dbm < floor_dbm
    if weak and (sum(f.reads) < WEAK_READS_MIN or len(f.antennas) < 2):
        return False  # as likely the next door's as ours
    if not w.holds(f, 2.0 * gap_s):
        return False
    if f.verdict in ("unclear", direction):
        return True
    if f.verdict in ("in", "out"):
        return False
    slack = 2.0 * gap_s
    came_from = "outside" if direction == "in" else "inside"
    if f.verdict == came_from:
        return f.at_s <= w.c1 and (not weak or f.last_s >= w.c0 - slack)
    return f.at_s >= w.c0 and (not weak or f.first_s <= w.c1 + slack)


def load_outputs(
    load: Load,
    device: str,
    location: str,
    decoder: EpcDecoder,
    late_of: uuid.UUID | None = None,
    already: Iterable[str] = (),
) -> list[Output]:
    """The drafts of one load (one per GTIN or SKU, unknown EPCs last), or why there are none;
    `late_of`: these are tags that joined the emitted load with that id late (`already` are
    the EPCs it has: a tag whose pass was cut in two is counted once)."""
    load_id = late_of or load.load_id(device)
    by_gtin: dict[str, list[tuple[Finished, str]]] = {}
    by_sku: dict[str, list[Finished]] = {}
    unknown: list[Finished] = []
    containers: list[str] = []
    seen: set[str] = set(already)
    for m in sorted(load.members, key=lambda m: m.epc):
        if m.epc in seen:  # one tag, its pass cut in two by a silence
            continue
        seen.add(m.epc)
        decoded = decoder.decode(m.epc)
        if isinstance(decoded, Sgtin):
            by_gtin.setdefault(decoded.gtin14, []).append((m, decoded.serial))
        elif isinstance(decoded, Sscc):
            containers.append(decoded.sscc18)
        elif isinstance(decoded, Mapped):
            by_sku.setdefault(decoded.sku, []).append(m)
        else:
            unknown.append(m)
    at = _time(load.last_s)
    if not (by_gtin or by_sku or unknown):
        if late_of is not None:
            return []  # a pallet tag read late: its load's transactions are out already
        kind = "receipt" if load.direction == "in" else "shipment"
        raw = f"load {load_id}: SSCC {' '.join(containers)}"
        why = f"{kind} of pallet tags only (no item tag read): nothing posted; count the pallet"
        return [Rejected(device, raw, why, at)]
    confidence = load.confidence
    common = _Common(load, load_id, tuple(sorted(set(containers))), device, location, at, late_of)
    out: list[TxnDraft] = []
    for gtin, items in sorted(by_gtin.items()):
        serials = tuple(s for _, s in items)
        out.append(common.draft([m for m, _ in items], confidence, gtin=gtin, serials=serials))
    for sku, tags in sorted(by_sku.items()):
        out.append(common.draft(tags, confidence, sku=sku))
    if unknown:
        out.append(common.draft(unknown, 0.0, sku=UNKNOWN_SKU))
    return [_checked(o) for o in out]


@dataclass(frozen=True, slots=True)
class _Common:
    load: Load
    load_id: uuid.UUID
    containers: tuple[str, ...]
    device: str
    location: str
    at: datetime
    late_of: uuid.UUID | None

    def draft(
        self,
        tags: Sequence[Finished],
        confidence: float,
        gtin: str | None = None,
        sku: str | None = None,
        serials: tuple[str, ...] = (),
    ) -> TxnDraft:
        inbound = self.load.direction == "in"
        return TxnDraft(
            device=self.device,
            kind=TxnKind.RECEIPT if inbound else TxnKind.SHIPMENT,
            qty=len(tags),
            occurred_at=self.at,
            sku=sku,
            gtin=gtin,
            serials=serials,
            epcs=tuple(t.epc for t in tags),
            from_location=None if inbound else self.location,
            to_location=self.location if inbound else None,
            confidence=confidence,
            evidence=self._evidence(tags),
            load_id=self.load_id,
        )

    def _evidence(self, tags: Sequence[Finished]) -> Evidence:
        reads = [sum(t.reads[z] for t in tags) for z in (OUT, IN, NEIGHBOUR)]
        odd = sum(t.verdict != self.load.direction for t in tags)
        note = f"{len(self.load.members)} tags in the load"
        if self.late_of is not None:
            note = f"{len(self.load.members)} tags that joined load {self.late_of} late"
        if odd:
            note += f"; {odd} of these without their own clear direction"
        if len(self.containers) > CONTAINERS_MAX:
            note += f"; {len(self.containers)} SSCCs, the first {CONTAINERS_MAX} listed"
        return Evidence(
            read_count=sum(reads),
            rssi_dbm=max(t.peak_dbm for t in tags),
            antennas=tuple(sorted({a for t in tags for a in t.antennas})),
            reads_by_zone={ZONE_NAMES[z]: reads[z] for z in (OUT, IN, NEIGHBOUR) if reads[z]},
            containers=self.containers[:CONTAINERS_MAX],
            first_seen_at=_time(self.load.first_s),
            last_seen_at=self.at,
            note=note,
        )


def _checked(draft: TxnDraft) -> Output:
    problem = wire_problem(draft)
    if problem is None:
        return draft
    raw = f"load {draft.load_id}: {draft.gtin or draft.sku} x{draft.qty}"
    return Rejected(
        draft.device, raw, f"draft refused by the wire contract: {problem}", draft.occurred_at
    )


def _cross_key(c: Finished) -> tuple[float, str]:
    return c.at_s, c.epc


def _time(s: float) -> datetime:
    return datetime.fromtimestamp(s, UTC)


@dataclass(frozen=True, slots=True)
class Emitted:
    """A load whose transactions are out; tags found later to belong to it join it late."""

    load_id: uuid.UUID
    direction: str
    window: Window
    floor_dbm: float
    confidence: float
    epcs: frozenset[str]

    @classmethod
    def of(cls, load: Load, device: str) -> "Emitted":
        epcs = frozenset(m.epc for m in load.members)
        window, floor = load.window, load.floor_dbm
        return cls(load.load_id(device), load.direction, window, floor, load.confidence, epcs)

    def takes_group(self, group: Sequence[Finished], gap_s: float, span_s_max: float) -> bool:
        """Crossings that continue this load: the same direction, within a gap of its
        crossings, and the two together no longer than a load."""
        w = self.window
        if any(c.verdict != self.direction for c in group):
            return False
        first, last = group[0].at_s, group[-1].at_s
        if first > w.c1 + gap_s or last < w.c0 - gap_s:
            return False
        return max(w.c1, last) - min(w.c0, first) <= span_s_max

    def takes(self, f: Finished, gap_s: float, span_s_max: float) -> bool:
        if f.verdict in ("in", "out"):
            return self.takes_group((f,), gap_s, span_s_max)
        w = self.window
        if f.verdict == "unclear" and (f.score > 0.0) != (self.direction == "in"):
            return False
        return fits(f, w, self.direction, self.floor_dbm, gap_s)

    def late(self, members: Sequence[Finished]) -> Load:
        return Load(self.direction, tuple(members), self.confidence, self.window, self.floor_dbm)

    def dump(self) -> list[Any]:
        w = self.window
        window, epcs = [w.first_s, w.c0, w.c1, w.last_s], sorted(self.epcs)
        return [str(self.load_id), self.direction, window, self.floor_dbm, self.confidence, epcs]

    @classmethod
    def load(cls, row: list[Any]) -> "Emitted":
        load_id, direction, (first, c0, c1, last), floor, confidence, epcs = row
        if direction not in ("in", "out") or not all(isinstance(e, str) for e in epcs):
            raise ValueError(f"emitted load {load_id!r}: direction {direction!r} or its EPCs")
        window = Window(float(first), float(c0), float(c1), float(last))
        return cls(
            uuid.UUID(load_id), direction, window, float(floor), float(confidence), frozenset(epcs)
        )
