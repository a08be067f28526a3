"""What the aggregator republishes: committed movements (.../ledger) and alerts (.../alerts)."""

from enum import StrEnum

from pydantic import Field

from stockwire.base import WireModel
from stockwire.names import Gtin14, Ident, LocationCode, ShortText, Sku
from stockwire.txn import TxnKind
from stockwire.wire_types import StrictInt, Timestamp, Version1, WireUuid


class Movement(WireModel):
    """One committed double-entry movement: qty of one item(+lot) from one location to another."""

    id: StrictInt = Field(ge=1)
    txn_id: WireUuid
    edge: Ident
    seq: StrictInt = Field(ge=0)
    kind: TxnKind
    sku: Sku | None
    gtin: Gtin14 | None
    lot: str | None
    qty: StrictInt = Field(gt=0)
    from_location: LocationCode
    to_location: LocationCode
    occurred_at: Timestamp
    committed_at: Timestamp
    reverses: StrictInt | None = None
    load_id: WireUuid | None = Field(
        default=None, description="the load (an RFID portal pass) its transaction belongs to"
    )


class LedgerEvents(WireModel):
    schema_version: Version1 = 1
    site: Ident
    movements: tuple[Movement, ...] = Field(min_length=1)


class AlertKind(StrEnum):
    LOW_STOCK = "low_stock"
    NEGATIVE_STOCK = "negative_stock"
    ANOMALY = "anomaly"
    DEVICE_OFFLINE = "device_offline"
    SEQ_GAP = "seq_gap"
    DEAD_LETTER = "dead_letter"
    RATE_LIMITED = "rate_limited"  # an edge sends more than its rate limit: messages refused


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(WireModel):
    schema_version: Version1 = 1
    site: Ident
    kind: AlertKind
    severity: Severity
    at: Timestamp
    message: ShortText
    edge: Ident | None = None
    subject: dict[str, str] = Field(default_factory=dict, max_length=16)
