"""The recognizer interface: pure, clock-injected state machines from readings to transactions."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from edge_agent.readings import Reading
from stockwire.txn import Evidence, TxnKind

Clock = Callable[[], datetime]


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


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reading that could not become a transaction; kept in the edge's rejected table."""

    device: str
    raw: str
    reason: str
    at: datetime


Output = TxnDraft | Rejected


class Recognizer(Protocol):
    def feed(self, reading: Reading) -> Sequence[Output]:
        """Consume one reading; return what it completes (often nothing)."""
        ...

    def tick(self) -> Sequence[Output]:
        """Called periodically; flush what time has completed (debounce windows, sessions)."""
        ...
