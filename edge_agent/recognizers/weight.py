"""The weight recognizer: a load-cell shelf's lane weights in, picks, put-aways and counts out.

Pure and clock-injected; every decision is taken in sample time (the WeightSamples' `at`), so
a replay after a restart gives the same outputs. `tick` has nothing to do: a lane only decides
when a sample arrives, and a lane whose samples stop (a device offline) waits, mid-change or
not, for the samples to come back; the change is then judged between the baseline before and
the stable level after, as one net transaction.

Per lane (weight_lane): a change between two stable baselines is judged in units
(weight_count) and becomes
- down n units: PICK n from the lane's location (to `pick_to`, or the ledger's @customer);
- up n units: PUTAWAY from `restock_from` to the lane, or RETURN to it when that is not set;
- its confidence is the posterior probability of that many whole units (against one more or
  less, and against an anomaly): >= 0.5 when the change is within the tolerance of whole
  units. A change outside it is posted anyway with a confidence below 0.5 (the aggregator's
  review) and a note saying why: never a silent guess. A change of less than half a unit that
  is no return to the baseline (a foreign item, a label, a broken piece) moves nothing: it
  posts a COUNT of the lane at its new weight, for review, noting the change.

The weight on a lane counts from the transmitter's zero: lanes are assumed empty at the zero
(tare the transmitters with the lanes empty); the tracked zero then follows idle drift. Each
lane posts a COUNT (qty = round(load / unit weight), its confidence from the residual) once it
has been quiet for `count_quiet_s` after a change or the start, then every `count_every_s`,
so the ledger records any variance against its book. After a change that went to review, the
lane's counts are doubtful (confidence < 0.5) until the lane is seen empty: the unexplained
weight may be a foreign item, and two of them can add up to whole units.
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from device_profiles.shelf import ShelfProfile
from edge_agent.readings import Reading, WeightSample
from edge_agent.recognizers.base import Clock, Output, Rejected, State, StateError, TxnDraft
from edge_agent.recognizers.weight_count import FLAGGED_CONFIDENCE_MAX, Judgement
from edge_agent.recognizers.weight_lane import Change, Count, Lane, LaneEvent
from edge_agent.recognizers.weight_stability import Sample
from edge_agent.settings import LaneConfig
from stockwire.txn import Evidence, TxnKind

STATE_VERSION = 1


class WeightRecognizer:
    """One shelf device (its lanes) into TxnDrafts; never raises on input."""

    def __init__(
        self, device: str, shelf: ShelfProfile, lanes: Sequence[LaneConfig], clock: Clock
    ) -> None:
        self.device = device
        self.shelf = shelf
        self._clock = clock
        self._configs = {lane.id: lane for lane in lanes}
        self._lanes = {lane.id: _lane(shelf, lane) for lane in lanes}

    # -- Recognizer -------------------------------------------------------------------------

    def feed(self, reading: Reading) -> list[Output]:
        if not isinstance(reading, WeightSample):
            return [Rejected(self.device, repr(reading), "not a weight sample", reading.at)]
        lane = self._lanes.get(reading.lane)
        if lane is None:
            known = ", ".join(sorted(self._lanes)) or "none"
            why = f"lane {reading.lane!r} is not configured on this shelf (lanes: {known})"
            return [Rejected(self.device, repr(reading), why, reading.at)]
        t_s = reading.at.timestamp()
        if not math.isfinite(reading.grams):
            return [Rejected(self.device, repr(reading), "weight is not a number", reading.at)]
        if lane.last_s is not None and t_s <= lane.last_s:
            why = "sample not later than the lane's previous one (ignored)"
            return [Rejected(self.device, repr(reading), why, reading.at)]
        events = lane.feed(Sample(t_s, reading.grams, reading.stable))
        config = self._configs[reading.lane]
        return [self._draft(config, event) for event in events]

    def tick(self) -> list[Output]:
        return []

    def snapshot(self) -> State:
        """Per lane: its phase, baseline, tracked zero, next count and window samples."""
        return {"v": STATE_VERSION, "lanes": {k: lane.dump() for k, lane in self._lanes.items()}}

    def restore(self, state: State) -> None:
        try:
            lanes = self._parse_state(state)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise StateError(f"weight recognizer {self.device}: {exc!r}") from None
        self._lanes = lanes

    def _parse_state(self, state: State) -> dict[str, Lane]:
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"state version {state.get('v')!r}, this is {STATE_VERSION}")
        rows = state["lanes"]
        if set(rows) != set(self._configs):
            raise ValueError(f"lanes {sorted(rows)}, configured {sorted(self._configs)}")
        return {k: _lane(self.shelf, self._configs[k], row) for k, row in rows.items()}

    # -- drafts -----------------------------------------------------------------------------

    def _draft(self, lane: LaneConfig, event: LaneEvent) -> TxnDraft:
        if isinstance(event, Count):
            return self._count(lane, event)
        j = event.judgement
        if j.qty == 0:
            return self._sub_unit(lane, event)
        if j.qty < 0:
            kind, source, target = TxnKind.PICK, lane.location, lane.pick_to
        elif lane.restock_from is not None:
            kind, source, target = TxnKind.PUTAWAY, lane.restock_from, lane.location
        else:
            kind, source, target = TxnKind.RETURN, None, lane.location
        note = None if j.accepted else _off_note(event, j, lane.unit_weight_g)
        if event.gap_s > 0.0:
            note = _join(note, f"the lane's samples stopped for {event.gap_s:.1f} s before")
        return TxnDraft(
            device=self.device,
            kind=kind,
            qty=abs(j.qty),
            occurred_at=_at(event.start_s),
            sku=lane.sku,
            gtin=lane.gtin,
            from_location=source,
            to_location=target,
            confidence=j.confidence,
            evidence=_evidence(event, lane.unit_weight_g, note),
        )

    def _sub_unit(self, lane: LaneConfig, event: Change) -> TxnDraft:
        j = event.judgement
        note = (
            f"change of {j.units:+.2f} units ({event.after_g - event.before_g:+.1f} g) is less"
            " than one unit and no return: a foreign item or a damaged piece? Nothing moved;"
            " this counts the lane at its new weight"
        )
        qty = max(0, round(event.load_after_g / lane.unit_weight_g))
        return TxnDraft(
            device=self.device,
            kind=TxnKind.COUNT,
            qty=qty,
            occurred_at=_at(event.start_s),
            sku=lane.sku,
            gtin=lane.gtin,
            to_location=lane.location,
            confidence=min(j.confidence, FLAGGED_CONFIDENCE_MAX),
            evidence=_evidence(event, lane.unit_weight_g, note),
        )

    def _count(self, lane: LaneConfig, count: Count) -> TxnDraft:
        j = count.judgement
        confidence, note = j.confidence, None
        if not j.accepted:
            note = (
                f"{j.units:.2f} units on the lane: {abs(j.residual_units):.2f} from a whole"
                f" number (tolerance {j.tolerance_units:.2f})"
            )
        if j.qty < 0:
            confidence = min(confidence, FLAGGED_CONFIDENCE_MAX)
            note = _join(note, f"the lane weighs {count.load_g:.1f} g, below its zero")
        if count.doubt:
            confidence = min(confidence, FLAGGED_CONFIDENCE_MAX)
            note = _join(note, "a change on the lane went to review since it was last empty")
        if abs(count.zero_g) > self.shelf.zero_drift_g_max:
            confidence = min(confidence, FLAGGED_CONFIDENCE_MAX)
            note = _join(note, f"the zero has drifted {count.zero_g:+.1f} g")
        return TxnDraft(
            device=self.device,
            kind=TxnKind.COUNT,
            qty=max(0, j.qty),
            occurred_at=_at(count.at_s),
            sku=lane.sku,
            gtin=lane.gtin,
            to_location=lane.location,
            confidence=confidence,
            evidence=Evidence(
                weight_after_g=round(count.load_g, 3),
                unit_weight_g=lane.unit_weight_g,
                residual_units=round(j.residual_units, 4),
                note=note,
            ),
        )


def _lane(shelf: ShelfProfile, config: LaneConfig, row: dict[str, Any] | None = None) -> Lane:
    if row is None:
        return Lane(shelf, config.unit_weight_g, len(config.cells))
    return Lane.load(shelf, config.unit_weight_g, len(config.cells), row)


def _evidence(event: Change, unit_g: float, note: str | None) -> Evidence:
    return Evidence(
        weight_before_g=round(event.before_g, 3),
        weight_after_g=round(event.after_g, 3),
        unit_weight_g=unit_g,
        residual_units=round(event.judgement.residual_units, 4),
        settle_ms=max(0, round((event.settled_s - event.start_s) * 1000.0)),
        note=note,
    )


def _off_note(event: Change, j: Judgement, unit_g: float) -> str:
    return (
        f"change of {j.units:+.2f} units ({event.after_g - event.before_g:+.1f} g at"
        f" {unit_g:g} g a unit) is {abs(j.residual_units):.2f} from a whole number, beyond the"
        f" tolerance of {j.tolerance_units:.2f}: a foreign item, or pieces of unusual weight?"
    )


def _join(note: str | None, more: str) -> str:
    return more if note is None else f"{note}; {more}"


def _at(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, UTC)
