"""What the aggregator republishes: committed movements (.../ledger) and alerts (.../alerts)."""

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from stockwire.base import WireModel
from stockwire.names import Gtin14, Ident, LocationCode, ShortText, Sku
from stockwire.txn import TxnKind


class Movement(WireModel):
    """One committed double-entry movement: qty of one item(+lot) from one location to another."""

    id: int = Field(ge=1)
    txn_id: UUID
    edge: Ident
    seq: int = Field(ge=0)
    kind: TxnKind
    sku: Sku | None
    gtin: Gtin14 | None
    lot: str | None
    qty: int = Field(gt=0)
    from_location: LocationCode
    to_location: LocationCode
    occurred_at: AwareDatetime
    committed_at: AwareDatetime
    reverses: int | None = None


class LedgerEvents(WireModel):
    schema_version: Literal[1] = 1
    site: Ident
    movements: tuple[Movement, ...] = Field(min_length=1)


class AlertKind(StrEnum):
    LOW_STOCK = "low_stock"
    NEGATIVE_STOCK = "negative_stock"
    ANOMALY = "anomaly"
    DEVICE_OFFLINE = "device_offline"
    SEQ_GAP = "seq_gap"
    DEAD_LETTER = "dead_letter"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(WireModel):
    schema_version: Literal[1] = 1
    site: Ident
    kind: AlertKind
    severity: Severity
    at: AwareDatetime
    message: ShortText
    edge: Ident | None = None
    subject: dict[str, str] = Field(default_factory=dict, max_length=16)
