"""StockTransaction and the batch the edge publishes on .../txn."""

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from stockwire.base import WireModel
from stockwire.names import (
    Epc,
    Gtin14,
    Ident,
    LocationCode,
    Lot,
    Serial,
    ShortText,
    Sku,
    Sscc,
    Uom,
    ZoneName,
)
from stockwire.wire_types import StrictFloat, StrictInt, Timestamp, Version1, WireDate, WireUuid

TXNS_PER_BATCH_MAX = 2000


class TxnKind(StrEnum):
    RECEIPT = "receipt"
    SHIPMENT = "shipment"
    PICK = "pick"
    PUTAWAY = "putaway"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    COUNT = "count"
    RETURN = "return"


class Evidence(WireModel):
    """What the sensor saw; kept with the transaction for audit and review."""

    raw: ShortText | None = None
    symbology: str | None = Field(default=None, max_length=8)
    read_count: StrictInt | None = Field(default=None, ge=0)
    rssi_dbm: StrictFloat | None = None
    antennas: tuple[StrictInt, ...] = ()
    # Load-cell shelves: the stable weights around the change, the item's unit weight, how far
    # the change is from a whole number of units (-0.5..0.5) and how long the lane took to settle
    weight_before_g: StrictFloat | None = None
    weight_after_g: StrictFloat | None = None
    unit_weight_g: StrictFloat | None = Field(default=None, gt=0)
    residual_units: StrictFloat | None = Field(default=None, ge=-0.5, le=0.5)
    settle_ms: StrictInt | None = Field(default=None, ge=0)
    # RFID: reads per portal zone, the pallet's SSCC, when the load was first and last seen
    reads_by_zone: dict[ZoneName, Annotated[StrictInt, Field(ge=0)]] = Field(
        default_factory=dict, max_length=8
    )
    containers: tuple[Sscc, ...] = Field(default=(), max_length=100)
    first_seen_at: Timestamp | None = None
    last_seen_at: Timestamp | None = None
    note: ShortText | None = None


# Which locations each kind needs. The ledger fills the missing side with a virtual location.
#   receipt    to        (from @supplier)      shipment  from  (to @customer)
#   pick       from      (to @customer unless to is given)
#   return     to        (from @customer)      putaway / transfer  from and to
#   adjustment exactly one of from (stock lost -> @loss) or to (stock found <- @loss)
#   count      to = the counted location; qty = counted quantity (may be 0)
_NEEDS: dict[TxnKind, tuple[bool | None, bool | None]] = {
    # (from required?, to required?)  None = optional
    TxnKind.RECEIPT: (None, True),
    TxnKind.SHIPMENT: (True, None),
    TxnKind.PICK: (True, None),
    TxnKind.RETURN: (None, True),
    TxnKind.PUTAWAY: (True, True),
    TxnKind.TRANSFER: (True, True),
    TxnKind.COUNT: (False, True),
}


class StockTransaction(WireModel):
    """One stock change seen at the edge. `id` is the idempotency key."""

    schema_version: Version1 = 1
    id: WireUuid
    edge: Ident
    device: Ident
    seq: StrictInt = Field(ge=0, description="per-edge monotonic sequence number")
    kind: TxnKind
    sku: Sku | None = None
    gtin: Gtin14 | None = None
    lot: Lot | None = None
    expiry: WireDate | None = None
    serials: tuple[Serial, ...] = Field(default=(), max_length=10_000)
    epcs: tuple[Epc, ...] = Field(default=(), max_length=10_000)
    qty: StrictInt = Field(ge=0, le=1_000_000_000, description="in the item's base unit")
    uom: Uom = "EA"
    from_location: LocationCode | None = None
    to_location: LocationCode | None = None
    occurred_at: Timestamp
    recorded_at: Timestamp
    confidence: StrictFloat = Field(default=1.0, ge=0.0, le=1.0)
    evidence: Evidence = Evidence()
    load_id: WireUuid | None = Field(
        default=None,
        description="transactions of one physical load (an RFID portal pass) share it",
    )

    @model_validator(mode="after")
    def _check_shape(self) -> Self:
        if self.sku is None and self.gtin is None:
            raise ValueError("an item needs a sku or a gtin")
        if self.qty == 0 and self.kind is not TxnKind.COUNT:
            raise ValueError(f"qty must be > 0 for a {self.kind.value}")
        if self.from_location is not None and self.from_location == self.to_location:
            raise ValueError("from_location and to_location are the same")
        if self.kind is TxnKind.ADJUSTMENT:
            if (self.from_location is None) == (self.to_location is None):
                raise ValueError("an adjustment needs exactly one of from_location or to_location")
            return self
        need_from, need_to = _NEEDS[self.kind]
        _check_side(self.kind, "from_location", self.from_location, need_from)
        _check_side(self.kind, "to_location", self.to_location, need_to)
        return self


def _check_side(kind: TxnKind, name: str, value: str | None, needed: bool | None) -> None:
    if needed is True and value is None:
        raise ValueError(f"a {kind.value} needs {name}")
    if needed is False and value is not None:
        raise ValueError(f"a {kind.value} takes no {name}")


class TxnBatch(WireModel):
    """What an edge publishes on stockwire/v1/{site}/{edge}/txn."""

    schema_version: Version1 = 1
    edge: Ident
    sent_at: Timestamp
    txns: tuple[StockTransaction, ...] = Field(min_length=1, max_length=TXNS_PER_BATCH_MAX)

    @model_validator(mode="after")
    def _same_edge(self) -> Self:
        for txn in self.txns:
            if txn.edge != self.edge:
                raise ValueError(f"txn {txn.id} names edge {txn.edge!r}, batch is {self.edge!r}")
        return self
