"""API models of lots and serials (aggregator.ledger.tracking_reads has the rows)."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class OnHand(BaseModel):
    location: str
    qty: int


class Lot(BaseModel):
    sku: str | None
    gtin: str | None
    lot: str
    expiry: date | None = Field(
        description="as first received (or that day + the item's shelf_life_days); never changes"
    )
    first_seen_at: datetime = Field(description="when its first movement happened")
    qty: int = Field(description="on hand over all physical locations")
    on_hand: list[OnHand] = Field(description="physical locations holding it (non-zero)")


class SerialMove(BaseModel):
    movement_id: int
    txn_id: UUID
    kind: str
    from_location: str
    to_location: str
    occurred_at: datetime
    committed_at: datetime
    reverses: int | None = Field(description="the movement this one undoes, if a reversal")


class Serial(BaseModel):
    serial: str
    sku: str | None
    gtin: str | None
    location: str = Field(description="where its last movement took it")
    state: Literal["in_stock", "departed"] = Field(
        description="in_stock at a physical location, departed to a virtual one"
    )
    last_txn_id: UUID = Field(description="the transaction that moved it last")
    updated_at: datetime
    history: list[SerialMove] = Field(description="its movements, newest first, at most `limit`")
