"""The recognizer interface: pure, clock-injected state machines from readings to transactions.

A recognizer's state survives a restart: the stage stores `snapshot()` in the same SQLite
transaction as the outputs of the readings it has consumed, and after a restart calls
`restore()` with it before it replays the readings not consumed yet. So a recognizer must be
deterministic in its readings (their event times, not the clock) for a replay to give the same
outputs.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from edge_agent.readings import Reading
from stockwire.txn import Evidence, TxnKind

Clock = Callable[[], datetime]
State = dict[str, Any]  # JSON-able: str, int, float, bool, None, lists and dicts of them


@dataclass(frozen=True, slots=True)
class TxnDraft:
    """A StockTransaction before the outbox gives it an id, the edge name and a seq."""

    device: str
    kind: TxnKind
    qty: int
    occurred_at: datetime
    sku: str | None = None
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serials: tuple[str, ...] = ()
    epcs: tuple[str, ...] = ()
    uom: str = "EA"
    from_location: str | None = None
    to_location: str | None = None
    confidence: float = 1.0
    evidence: Evidence = field(default_factory=Evidence)
    load_id: UUID | None = None


DRAFT_FIELDS = tuple(f.name for f in fields(TxnDraft))  # dataclasses.fields() is slow per call


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reading that could not become a transaction; kept in the edge's rejected table."""

    device: str
    raw: str
    reason: str
    at: datetime


Output = TxnDraft | Rejected


class StateError(ValueError):
    """A snapshot that cannot be restored (another version's format, or damaged)."""


class Recognizer(Protocol):
    def feed(self, reading: Reading) -> Sequence[Output]:
        """Consume one reading; return what it completes (often nothing)."""
        ...

    def tick(self) -> Sequence[Output]:
        """Called periodically; flush what time has completed (debounce windows, sessions)."""
        ...

    def snapshot(self) -> State:
        """All state that decides future outputs, JSON-able and small (it is written with
        every stage commit that changes it); carry a format version in it."""
        ...

    def restore(self, state: State) -> None:
        """Take the state of a snapshot, all or nothing: raise (StateError) and leave the
        recognizer as it was when the state cannot be used."""
        ...
