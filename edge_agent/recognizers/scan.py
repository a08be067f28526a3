"""The scan recognizer: barcode scans (commands and items) in, stock transactions out.

Pure and clock-injected: no I/O, time comes from the scans. A person drives it with command
barcodes (see commands.py): a mode, a sticky location (and destination), then item scans.
"""

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from device_profiles.schema import ScannerProfile
from edge_agent.readings import Reading, Scan
from edge_agent.recognizers.base import (
    DRAFT_FIELDS,
    Clock,
    Output,
    Rejected,
    State,
    StateError,
    TxnDraft,
)
from edge_agent.recognizers.commands import (
    KIND_OF_MODE,
    Cancel,
    Command,
    CommandError,
    End,
    Mode,
    SetDestination,
    SetLocation,
    SetLot,
    SetMode,
    SetQty,
    is_command,
    parse_command,
)
from edge_agent.recognizers.gs1 import (
    PLAIN_GTIN_DIGITS,
    Gs1Data,
    Gs1Error,
    is_gs1,
    parse_gs1,
    split_symbology,
)
from stockwire.txn import Evidence, StockTransaction

EVIDENCE_RAW_CHARS_MAX = 500
STATE_VERSION = 1
_PROBE_ID = UUID(int=0)
_TO_SIDE = frozenset({Mode.RECEIVE, Mode.RETURN, Mode.ADJUST_IN, Mode.COUNT})
_BOTH_SIDES = frozenset({Mode.PUTAWAY, Mode.TRANSFER})


@dataclass(frozen=True, slots=True)
class Item:
    """What an item barcode says: identity, and a quantity if the barcode states one."""

    symbology: str | None
    sku: str | None = None
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    qty: int | None = None
    note: str | None = None


@dataclass(slots=True)
class ScanCounters:
    scans: int = 0
    drafts: int = 0
    rejected: int = 0
    duplicates: int = 0


@dataclass(slots=True)
class _CountLine:
    first: TxnDraft
    qty: int = 0
    scans: int = 0
    serials: list[str] = field(default_factory=list)


class ScanRecognizer:
    """Turns one scanner's scans into TxnDrafts and Rejected outputs; never raises on input.

    Times come from the scans (event time), so a replay gives the same result; `clock` is
    taken for the Recognizer contract and nothing here needs it yet. A duplicate is a scan
    equal to the previous one within the profile's duplicate_window_ms (the window slides
    while a presentation scanner keeps re-reading the same label).
    """

    def __init__(
        self,
        device: str,
        profile: ScannerProfile,
        clock: Clock,
        default_location: str | None = None,
    ) -> None:
        self.device = device
        self.profile = profile
        self.counters = ScanCounters()
        self._clock = clock
        self._sku = re.compile(profile.sku_pattern)
        self._window = timedelta(milliseconds=profile.duplicate_window_ms)
        self._last: tuple[str, datetime] | None = None
        self._mode: Mode | None = None
        self._loc = default_location
        self._to: str | None = None
        self._qty_once: int | None = None
        self._lot_once: str | None = None
        self._count: dict[tuple[str | None, str | None, str | None], _CountLine] | None = None

    def feed(self, reading: Reading) -> list[Output]:
        if not isinstance(reading, Scan):
            return [Rejected(self.device, repr(reading), "not a barcode scan", reading.at)]
        self.counters.scans += 1
        if self._is_duplicate(reading.raw, reading.at):
            self.counters.duplicates += 1
            return []
        outputs = self._handle(reading.raw, reading.at)
        rejected = sum(isinstance(o, Rejected) for o in outputs)
        self.counters.rejected += rejected
        self.counters.drafts += len(outputs) - rejected
        return outputs

    def tick(self) -> list[Output]:
        """Nothing here completes with time: counts close on SW:END, a mode or a location."""
        return []

    def snapshot(self) -> State:
        """Mode, locations, the pending qty/lot, an open count and the last scan (duplicates)."""
        count = None
        if self._count is not None:
            count = [
                {
                    "first": _DRAFT.dump_python(line.first, mode="json", exclude_defaults=True),
                    "qty": line.qty,
                    "scans": line.scans,
                    "serials": list(line.serials),
                }
                for line in self._count.values()
            ]
        last = None if self._last is None else [self._last[0], self._last[1].isoformat()]
        return {
            "v": STATE_VERSION,
            "mode": None if self._mode is None else self._mode.value,
            "loc": self._loc,
            "to": self._to,
            "qty": self._qty_once,
            "lot": self._lot_once,
            "count": count,
            "last": last,
        }

    def restore(self, state: State) -> None:
        try:
            saved = _ScanState.model_validate(state)
        except ValidationError as e:
            raise StateError(f"scan recognizer {self.device}: {e}") from None
        count = None
        if saved.count is not None:
            count = {
                (c.first.sku, c.first.gtin, c.first.lot): _CountLine(
                    c.first, c.qty, c.scans, list(c.serials)
                )
                for c in saved.count
            }
        self._mode, self._loc, self._to = saved.mode, saved.loc, saved.to
        self._qty_once, self._lot_once = saved.qty, saved.lot
        self._count = count
        self._last = saved.last

    def _is_duplicate(self, raw: str, at: datetime) -> bool:
        """The same raw string as the previous scan, within the profile's duplicate window."""
        last, self._last = self._last, (raw, at)
        if last is None or last[0] != raw:
            return False
        return timedelta(0) <= at - last[1] < self._window

    def _handle(self, raw: str, at: datetime) -> list[Output]:
        try:
            symbology, data = split_symbology(raw)
        except Gs1Error as exc:
            return [self._reject(raw, at, str(exc))]
        if symbology is None and self.profile.symbology_ids:
            why = f"no AIM symbology identifier, but profile {self.profile.name} sends them"
            return [self._reject(raw, at, why)]
        if not data.strip():
            after = f" after symbology identifier {symbology}" if symbology else ""
            return [self._reject(raw, at, f"empty scan{after}")]
        if is_command(data):
            try:
                command = parse_command(data)
            except CommandError as exc:
                return [self._reject(raw, at, str(exc))]
            return self._command(command, raw, at)
        item = self._item(raw, symbology, data)
        if isinstance(item, str):
            return [self._reject(raw, at, item)]
        return self._post(item, raw, at)

    def _item(self, raw: str, symbology: str | None, data: str) -> Item | str:
        try:
            return item_from_gs1(parse_gs1(raw))
        except Gs1Error as exc:
            gs1_error = f"bad GS1 barcode: {exc}"
        claims_gs1 = is_gs1(raw)
        plain_gtin = data.isdigit() and len(data) in PLAIN_GTIN_DIGITS
        if claims_gs1 and (symbology is not None or plain_gtin):
            return gs1_error
        if self._sku.fullmatch(data):
            return Item(symbology=symbology, sku=data)
        if claims_gs1:
            return gs1_error
        return f"not a command, a GS1 barcode or a SKU matching {self.profile.sku_pattern!r}"

    # -- commands -----------------------------------------------------------------------------

    def _command(self, command: Command, raw: str, at: datetime) -> list[Output]:
        match command:
            case SetMode(mode):
                out = self._close_count(at)
                self._mode = mode
                self._count = {} if mode is Mode.COUNT else None
                if self._count is None and self._qty_once == 0:
                    self._qty_once = None  # a count's "absent" leaves with the count
                return out
            case SetLocation(code):
                return self._set_location(code, at)
            case SetDestination(code):
                self._to = code
            case SetQty(qty):
                if qty == 0 and self._count is None:
                    return [self._reject(raw, at, self._qty_zero_problem())]
                self._qty_once = qty
            case SetLot(lot):
                self._lot_once = lot
            case End():
                return self._end(raw, at)
            case Cancel():
                self._qty_once = self._lot_once = None
                self._count = None
        return []

    def _qty_zero_problem(self) -> str:
        if self._mode is not Mode.COUNT:
            return "SW:QTY:0 is only allowed in COUNT mode"
        return "SW:QTY:0 is only allowed in an open count; scan SW:LOC:<code> first"

    def _set_location(self, code: str, at: datetime) -> list[Output]:
        if self._mode is not Mode.COUNT:
            self._loc = code
            return []
        if self._count is not None and code == self._loc:
            return []
        out = self._close_count(at)
        self._loc = code
        self._count = {}
        return out

    def _end(self, raw: str, at: datetime) -> list[Output]:
        if self._mode is not Mode.COUNT:
            return [self._reject(raw, at, "SW:END outside COUNT mode")]
        if self._count is None:
            return [self._reject(raw, at, "SW:END with no open count; scan SW:LOC:<code>")]
        return self._close_count(at)

    def _close_count(self, at: datetime) -> list[Output]:
        lines, self._count = self._count, None
        if not lines:
            return []
        out: list[Output] = []
        for line in lines.values():
            evidence = line.first.evidence.model_copy(
                update={"read_count": line.scans, "note": f"count of {line.scans} scans"}
            )
            draft = replace(
                line.first,
                qty=line.qty,
                serials=tuple(line.serials),
                occurred_at=at,
                evidence=evidence,
            )
            problem = wire_problem(draft)
            raw = evidence.raw or ""
            out.append(self._reject(raw, at, f"count: {problem}") if problem else draft)
        return out

    # -- items --------------------------------------------------------------------------------

    def _post(self, item: Item, raw: str, at: datetime) -> list[Output]:
        draft = self._draft(item, raw, at)
        if isinstance(draft, str):
            return [self._reject(raw, at, draft)]
        if self._mode is Mode.COUNT:
            problem = self._add_to_count(draft, item)
            if problem:
                return [self._reject(raw, at, problem)]
            self._qty_once = self._lot_once = None
            return []
        self._qty_once = self._lot_once = None
        return [draft]

    def _draft(self, item: Item, raw: str, at: datetime) -> TxnDraft | str:
        mode = self._mode
        if mode is None:
            return "item scanned before SW:MODE:<mode>"
        if mode is Mode.COUNT and self._count is None:
            return "no open count: scan SW:LOC:<code> or SW:MODE:COUNT to open one"
        if item.serial is not None and self._qty_once not in (None, 1):
            return f"serialised item (AI 21) is one unit, but SW:QTY:{self._qty_once} is pending"
        qty = next(q for q in (self._qty_once, item.qty, 1) if q is not None)
        if qty == 0 and mode is not Mode.COUNT:
            return f"quantity 0 is only allowed in COUNT mode, not {mode.value}"
        sides = self._sides(mode)
        if isinstance(sides, str):
            return sides
        draft = TxnDraft(
            device=self.device,
            kind=KIND_OF_MODE[mode],
            qty=qty,
            occurred_at=at,
            sku=item.sku,
            gtin=item.gtin,
            lot=self._lot_once or item.lot,
            expiry=item.expiry,
            serials=(item.serial,) if item.serial else (),
            from_location=sides[0],
            to_location=sides[1],
            evidence=Evidence(
                raw=raw[:EVIDENCE_RAW_CHARS_MAX], symbology=item.symbology, note=item.note
            ),
        )
        return wire_problem(draft) or draft

    def _sides(self, mode: Mode) -> tuple[str | None, str | None] | str:
        loc = self._loc
        if loc is None:
            return "no location: scan SW:LOC:<code> first"
        if mode in _TO_SIDE:
            return None, loc
        if mode not in _BOTH_SIDES:
            return loc, None
        if self._to is None:
            return f"no destination for {mode.value}: scan SW:TO:<code> first"
        if self._to == loc:
            return f"SW:TO:{loc} is the current location; a {mode.value} needs two locations"
        return loc, self._to

    def _add_to_count(self, draft: TxnDraft, item: Item) -> str | None:
        assert self._count is not None
        line = self._count.setdefault((draft.sku, draft.gtin, draft.lot), _CountLine(draft))
        if item.serial is not None:
            if item.serial in line.serials:
                return f"serial {item.serial} is already in this count"
            line.serials.append(item.serial)
        line.qty += draft.qty
        line.scans += 1
        return None

    def _reject(self, raw: str, at: datetime, reason: str) -> Rejected:
        return Rejected(device=self.device, raw=raw, reason=reason, at=at)


_DRAFT = TypeAdapter(TxnDraft)


class _CountLineState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first: TxnDraft
    qty: int
    scans: int
    serials: list[str]


class _ScanState(BaseModel):
    """What ScanRecognizer.snapshot writes; validated before restore takes any of it."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1]
    mode: Mode | None
    loc: str | None
    to: str | None
    qty: int | None
    lot: str | None
    count: list[_CountLineState] | None
    last: tuple[str, datetime] | None


def item_from_gs1(data: Gs1Data) -> Item | str:
    """The item a GS1 barcode names, or why it names none (an SSCC alone is not an item)."""
    qty: int | None
    if data.content_gtin14 is not None:
        if data.gtin14 is not None:
            return "AI (01) and AI (02) in one barcode"
        if data.content_count is None:
            return "AI (02) content GTIN without AI (37) count of trade items"
        gtin, qty = data.content_gtin14, data.content_count
    elif data.gtin14 is None:
        if data.sscc is not None:
            return (
                f"SSCC {data.sscc} identifies a logistic unit, not an item; "
                "scan the items or a label with AI (02)+(37)"
            )
        return "GS1 data names no item (no AI 01 or 02)"
    elif data.content_count is not None:
        return "AI (37) needs AI (02), not AI (01)"
    elif data.serial is not None and data.count not in (None, 1):
        return f"serialised item (AI 21) is one unit, but AI (30) says {data.count}"
    else:
        gtin, qty = data.gtin14, 1 if data.serial is not None else data.count
    return Item(
        symbology=data.symbology,
        gtin=gtin,
        lot=data.lot,
        expiry=data.expiry,
        serial=data.serial,
        qty=qty,
        note=f"SSCC {data.sscc}" if data.sscc else None,
    )


def wire_problem(draft: TxnDraft) -> str | None:
    """Why the wire contract would refuse this draft, if it would (checked before emitting)."""
    values = {name: getattr(draft, name) for name in DRAFT_FIELDS}
    try:
        StockTransaction.model_validate(
            {**values, "id": _PROBE_ID, "edge": "probe", "seq": 0, "recorded_at": draft.occurred_at}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return None
