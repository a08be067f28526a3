"""What the API returns; separate from storage rows. Movements use the wire model."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from stockwire.events import Movement

PAYLOAD_PREVIEW_CHARS_MAX = 2000


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    mqtt: bool
    mqtt_anonymous: bool | None = Field(
        description="The broker lets in clients without credentials: anyone who reaches it can "
        "post as any edge. Null until the aggregator has probed it."
    )


class StockLine(BaseModel):
    sku: str | None
    gtin: str | None
    location: str
    virtual: bool
    lot: str | None
    qty: int


class MovementPage(BaseModel):
    items: list[Movement]
    next: int | None


class DeadLetter(BaseModel):
    id: int
    topic: str
    reason: str
    payload_base64: str = Field(description="the kept prefix of the payload")
    payload_preview: str
    payload_bytes: int = Field(description="the size received")
    payload_sha256: str = Field(description="of the whole payload received")
    payload_truncated: bool
    received_at: datetime


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next: int | None


class Rejected(BaseModel):
    id: int
    txn_id: UUID
    edge: str
    reason: str
    body: dict[str, Any]
    received_at: datetime


class RejectedPage(BaseModel):
    items: list[Rejected]
    next: int | None


class Transaction(BaseModel):
    id: UUID
    edge: str
    seq: int
    kind: str
    status: str
    body: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    committed_at: datetime | None
    review_reason: str | None = Field(description="why a pending transaction waits in review")
    load_id: UUID | None = Field(description="the physical load (RFID portal pass) it belongs to")
    movements: list[Movement]


TxnStatus = Literal["pending", "posted", "voided"]


class TransactionSummary(BaseModel):
    """One transaction in a listing: who saw what, and the body's main fields."""

    id: UUID
    edge: str
    device: str
    seq: int
    kind: str
    status: TxnStatus
    review_reason: str | None = Field(description="why a pending transaction waits in review")
    sku: str | None
    gtin: str | None
    lot: str | None
    qty: int
    uom: str
    from_location: str | None
    to_location: str | None
    confidence: float
    epcs: int = Field(description="how many EPCs it carries (GET /transactions/{id} lists them)")
    load_id: UUID | None
    occurred_at: datetime
    received_at: datetime
    committed_at: datetime | None


class TransactionPage(BaseModel):
    items: list[TransactionSummary]
    next: UUID | None = Field(description="pass as `after` for the next page; null on the last")


class EpcMove(BaseModel):
    movement_id: int
    txn_id: UUID
    load_id: UUID | None
    kind: str
    from_location: str
    to_location: str
    occurred_at: datetime
    committed_at: datetime
    reverses: int | None = Field(description="the movement this one undoes, if a reversal")


class Epc(BaseModel):
    epc: str = Field(description="hex, upper case")
    sku: str | None
    gtin: str | None
    location: str = Field(description="where its last movement took it")
    state: Literal["in_stock", "departed", "in_review"] = Field(
        description="in_stock at a physical location, departed to a virtual one, or held by a "
        "transaction waiting in review (review_txn_id)"
    )
    last_txn_id: UUID = Field(description="the transaction that moved it last")
    review_txn_id: UUID | None
    updated_at: datetime
    history: list[EpcMove] = Field(description="its movements, newest first, at most `limit`")


class Edge(BaseModel):
    edge: str
    state: str | None = Field(description="as the edge last reported it (online / offline)")
    last_seq: int | None
    last_seen: datetime | None
    refused: int = Field(description="messages refused since the aggregator started")
