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
    movements: list[Movement]


class Edge(BaseModel):
    edge: str
    state: str | None = Field(description="as the edge last reported it (online / offline)")
    last_seq: int | None
    last_seen: datetime | None
    refused: int = Field(description="messages refused since the aggregator started")
