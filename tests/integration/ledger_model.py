"""A pure-Python ledger: what the real one must do with the same operations, kept apart from its
code (no import from aggregator.ledger) so the invariant tests compare two implementations.

Movements, and where each EPC is; balances at any event or commit time are replays of the
movements. EPC rules as the ledger's defaults (review_epcs_moved_elsewhere on): a transaction
with EPCs waits in review when an EPC is listed twice, its qty is not its number of EPCs, or an
EPC is in stock at a physical location other than where the transaction takes it from.

Counts by event time: a count's book is the balance as of its event time, its adjustment happens
then; a movement with an event time at or before a count already posted at its (item, location,
lot) is followed by a compensation at the earliest such count's time (a count's own adjustment:
a count strictly after it). Reversals owe nothing.

Lots and serials as aggregator.ledger.tracking, with the default tracking_violations = reject:
a lot-tracked item moved without a lot, a receipt of a lot expired before its day, a serial-
tracked item whose qty is not its number of serials, or a serial listed twice is rejected; a
lot named with another expiry than the one on record, a serial received while in stock or
moved from where it is not, waits in review. A person's approval posts it whatever the rules.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from uuid import UUID

from stockwire.ack import AckStatus
from stockwire.txn import StockTransaction, TxnKind

K = TxnKind
VIRTUAL = ("@supplier", "@customer", "@production", "@loss", "@transit", "@review")
REVIEW_CONFIDENCE_MIN = 0.5
Key = tuple[str, str, str]  # (sku, location, lot)


@dataclass(frozen=True, slots=True)
class Move:
    sku: str
    lot: str
    src: str
    dst: str
    qty: int
    occurred_at: datetime
    committed_at: datetime
    reverses: int | None = None  # index in Model.moves
    epcs: tuple[str, ...] = ()  # what it moved (a count moves none)
    serials: tuple[str, ...] = ()  # likewise


@dataclass
class Model:
    bodies: dict[UUID, str] = field(default_factory=dict)  # accepted ids -> canonical body
    pending: dict[UUID, StockTransaction] = field(default_factory=dict)
    held: list[UUID] = field(default_factory=list)  # every id that ever went to review
    moves: list[Move] = field(default_factory=list)
    reversed: set[int] = field(default_factory=set)
    epc_at: dict[str, str] = field(default_factory=dict)  # EPC -> where it is
    epc_held_by: dict[str, UUID] = field(default_factory=dict)  # EPC -> pending txn
    counted: dict[Key, list[datetime]] = field(default_factory=dict)  # count times per balance
    # sku -> (tracking, shelf_life_days) of the items that have master data
    tracking: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    expiry: dict[tuple[str, str], date | None] = field(default_factory=dict)  # (sku, lot)
    serial_at: dict[tuple[str, str], str] = field(default_factory=dict)  # (sku, serial) -> where

    def post(self, txns: Iterable[StockTransaction], now: datetime) -> list[AckStatus]:
        """Each txn's status; the movements they make are appended to `moves`."""
        txns = list(txns)
        refused: list[UUID] = []
        statuses = [self._post_one(txn, now, refused) for txn in txns]
        for txn_id in refused:  # kept as rejected, not as transactions: new again next time
            self.bodies.pop(txn_id, None)
        for txn, status in zip(txns, statuses, strict=True):
            if status is AckStatus.ACCEPTED and txn.id in self.pending:
                # Its EPCs that have a place once the whole batch is posted wait with it.
                self.epc_held_by.update((e, txn.id) for e in tags(txn) if e in self.epc_at)
        return statuses

    def epc_states(self) -> dict[str, tuple[str, str]]:
        """EPC -> (where, state), as GET /epcs/{epc} tells it."""
        return {e: (at, self._state(e, at)) for e, at in self.epc_at.items()}

    def _state(self, epc: str, at: str) -> str:
        if epc in self.epc_held_by:
            return "in_review"
        return "departed" if at.startswith("@") else "in_stock"

    def serial_states(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(sku, serial) -> (where, state), as GET /serials/{serial} tells it."""
        return {
            k: (at, "departed" if at.startswith("@") else "in_stock")
            for k, at in self.serial_at.items()
        }

    def _post_one(self, txn: StockTransaction, now: datetime, refused: list[UUID]) -> AckStatus:
        body = txn.model_dump_json()
        if txn.id in self.bodies:
            same = self.bodies[txn.id] == body
            return AckStatus.DUPLICATE if same else AckStatus.REJECTED
        if any(c is not None and c.startswith("@") and c not in VIRTUAL for c in _codes(txn)):
            return AckStatus.REJECTED
        if not _two_places(txn):
            return AckStatus.REJECTED
        self.bodies[txn.id] = body
        if txn.confidence < REVIEW_CONFIDENCE_MIN or self._epcs_doubtful(txn):
            self.pending[txn.id] = txn
            self.held.append(txn.id)
            return AckStatus.ACCEPTED
        leg = self._leg(txn)
        if leg is None:  # a count that matches the book
            return AckStatus.ACCEPTED
        if self._violation(txn):
            refused.append(txn.id)
            return AckStatus.REJECTED
        if self._conflict(txn, leg[0]):
            self.pending[txn.id] = txn
            self.held.append(txn.id)
        else:
            self._apply(txn, now)
        return AckStatus.ACCEPTED

    def _violation(self, txn: StockTransaction) -> bool:
        assert txn.sku is not None, "the tests name items by sku"
        mode, _ = self.tracking.get(txn.sku, ("none", None))
        if mode == "lot" and txn.lot is None:
            return True
        if len(set(txn.serials)) != len(txn.serials):
            return True
        if mode == "serial" and txn.kind is not K.COUNT and txn.qty != len(txn.serials):
            return True
        if txn.kind is K.RECEIPT and txn.lot is not None:
            until = txn.expiry or self.expiry.get((txn.sku, txn.lot))
            return until is not None and until < txn.occurred_at.date()
        return False

    def _conflict(self, txn: StockTransaction, src: str) -> bool:
        assert txn.sku is not None, "the tests name items by sku"
        key = (txn.sku, txn.lot or "")
        named = txn.lot is not None and txn.expiry is not None
        if named and key in self.expiry and self.expiry[key] != txn.expiry:
            return True
        if txn.kind is K.COUNT:
            return False
        places = [self.serial_at.get((txn.sku, s)) for s in txn.serials]
        if src.startswith("@"):
            return any(at is not None and not at.startswith("@") for at in places)
        return any(at != src for at in places)

    def decide(self, txn_id: UUID, approve: bool, now: datetime) -> bool:
        """False when the txn is no longer pending (the ledger must refuse)."""
        txn = self.pending.pop(txn_id, None)
        if txn is None:
            return False
        self.epc_held_by = {e: t for e, t in self.epc_held_by.items() if t != txn_id}
        if approve:
            self._apply(txn, now)
        return True

    def reverse(self, index: int, now: datetime) -> bool:
        """False when the movement is a reversal or reversed already (the ledger must refuse)."""
        move = self.moves[index]
        if move.reverses is not None or index in self.reversed:
            return False
        self.reversed.add(index)
        back = Move(
            move.sku,
            move.lot,
            move.dst,
            move.src,
            move.qty,
            move.occurred_at,
            now,
            reverses=index,
            epcs=move.epcs,
            serials=move.serials,
        )
        self.epc_at.update((e, back.dst) for e in back.epcs)
        self.serial_at.update(((back.sku, s), back.dst) for s in back.serials)
        self.moves.append(back)
        return True

    def _epcs_doubtful(self, txn: StockTransaction) -> bool:
        named = tags(txn)
        if not named:
            return False
        if len(named) != len(txn.epcs) or txn.qty != len(named):
            return True
        src, _ = _sides(txn)
        places = (self.epc_at.get(e) for e in named)
        return any(at is not None and not at.startswith("@") and at != src for at in places)

    def _leg(self, txn: StockTransaction) -> tuple[str, str, int] | None:
        """(from, to, qty) of what txn moves; None for a count that matches the book."""
        assert txn.sku is not None, "the tests name items by sku"
        if txn.kind is not K.COUNT:
            return (*_sides(txn), txn.qty)
        assert txn.to_location is not None
        place = txn.to_location
        have = self.as_of(txn.occurred_at, None).get((txn.sku, place, txn.lot or ""), 0)
        if txn.qty == have:
            return None
        src, dst = ("@loss", place) if txn.qty > have else (place, "@loss")
        return src, dst, abs(txn.qty - have)

    def _apply(self, txn: StockTransaction, now: datetime) -> None:
        assert txn.sku is not None, "the tests name items by sku"
        lot = txn.lot or ""
        at = txn.occurred_at
        leg = self._leg(txn)
        if txn.kind is K.COUNT:
            assert txn.to_location is not None
            if leg is not None:
                src, dst, qty = leg
                self._move(Move(txn.sku, lot, src, dst, qty, at, now), True)
                if txn.lot is not None:
                    self.expiry.setdefault((txn.sku, txn.lot), self._first_expiry(txn))
            self.counted.setdefault((txn.sku, txn.to_location, lot), []).append(at)
            return
        assert leg is not None, "only a count can move nothing"
        src, dst, qty = leg
        moved = tuple(tags(txn))
        units = txn.serials
        self._move(Move(txn.sku, lot, src, dst, qty, at, now, epcs=moved, serials=units), False)
        self.epc_at.update((e, dst) for e in moved)
        self.serial_at.update(((txn.sku, s), dst) for s in units)
        if txn.lot is not None:
            self.expiry.setdefault((txn.sku, txn.lot), self._first_expiry(txn))

    def _first_expiry(self, txn: StockTransaction) -> date | None:
        assert txn.sku is not None, "the tests name items by sku"
        _, shelf_life = self.tracking.get(txn.sku, ("none", None))
        if txn.expiry is not None or shelf_life is None:
            return txn.expiry
        return txn.occurred_at.date() + timedelta(days=shelf_life)

    def _move(self, move: Move, counting: bool) -> None:
        """The move, and its compensation for each of its sides counted after it."""
        self.moves.append(move)
        for place, toward in ((move.src, False), (move.dst, True)):
            if place.startswith("@"):
                continue
            times = self.counted.get((move.sku, place, move.lot), [])
            later = [
                t for t in times if t > move.occurred_at or (t == move.occurred_at and not counting)
            ]
            if later:
                src, dst = (place, "@loss") if toward else ("@loss", place)
                self.moves.append(
                    Move(move.sku, move.lot, src, dst, move.qty, min(later), move.committed_at)
                )

    def balances(self, counted: Callable[[Move], bool] = lambda _: True) -> dict[Key, int]:
        """Non-zero balances from the movements `counted` keeps (all of them by default)."""
        total: defaultdict[Key, int] = defaultdict(int)
        for m in self.moves:
            if counted(m):
                total[(m.sku, m.src, m.lot)] -= m.qty
                total[(m.sku, m.dst, m.lot)] += m.qty
        return {k: v for k, v in total.items() if v != 0}

    def as_of(self, event: datetime | None, known: datetime | None) -> dict[Key, int]:
        return self.balances(
            lambda m: (
                (event is None or m.occurred_at <= event)
                and (known is None or m.committed_at <= known)
            )
        )


def tags(txn: StockTransaction) -> list[str]:
    """The EPCs a transaction moves, each once; a count moves none."""
    if txn.kind is K.COUNT:
        return []
    return list(dict.fromkeys(e.upper() for e in txn.epcs))


def _two_places(txn: StockTransaction) -> bool:
    """A count counts a physical location; anything else moves between two different ones."""
    if txn.kind is K.COUNT:
        return txn.to_location is not None and not txn.to_location.startswith("@")
    src, dst = _sides(txn)
    return src != dst


def _codes(txn: StockTransaction) -> tuple[str | None, str | None]:
    return txn.from_location, txn.to_location


def _sides(txn: StockTransaction) -> tuple[str, str]:
    src, dst = txn.from_location, txn.to_location
    defaults = {
        K.RECEIPT: ("@supplier", None),
        K.RETURN: ("@customer", None),
        K.SHIPMENT: (None, "@customer"),
        K.PICK: (None, "@customer"),
        K.ADJUSTMENT: ("@loss", "@loss"),
    }
    default_src, default_dst = defaults.get(txn.kind, (None, None))
    src, dst = src or default_src, dst or default_dst
    assert src is not None, f"a {txn.kind} names from_location"
    assert dst is not None, f"a {txn.kind} names to_location"
    return src, dst
