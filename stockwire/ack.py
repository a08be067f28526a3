"""The aggregator's answer on stockwire/v1/{site}/{edge}/ack."""

from enum import StrEnum

from pydantic import Field

from stockwire.base import WireModel
from stockwire.names import Ident, ShortText
from stockwire.txn import TXNS_PER_BATCH_MAX
from stockwire.wire_types import Timestamp, Version1, WireUuid


class AckStatus(StrEnum):
    ACCEPTED = "accepted"  # committed now
    DUPLICATE = "duplicate"  # same id, same body: committed earlier
    REJECTED = "rejected"  # kept in the aggregator's rejected table; never retried


class AckResult(WireModel):
    id: WireUuid
    status: AckStatus
    reason: ShortText | None = None


class Ack(WireModel):
    schema_version: Version1 = 1
    edge: Ident
    acked_at: Timestamp
    results: tuple[AckResult, ...] = Field(min_length=1, max_length=TXNS_PER_BATCH_MAX)
