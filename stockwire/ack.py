"""The aggregator's answer on stockwire/v1/{site}/{edge}/ack."""

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from stockwire.base import WireModel
from stockwire.names import Ident, ShortText
from stockwire.txn import TXNS_PER_BATCH_MAX


class AckStatus(StrEnum):
    ACCEPTED = "accepted"  # committed now
    DUPLICATE = "duplicate"  # same id, same body: committed earlier
    REJECTED = "rejected"  # kept in the aggregator's rejected table; never retried


class AckResult(WireModel):
    id: UUID
    status: AckStatus
    reason: ShortText | None = None


class Ack(WireModel):
    schema_version: Literal[1] = 1
    edge: Ident
    acked_at: AwareDatetime
    results: tuple[AckResult, ...] = Field(min_length=1, max_length=TXNS_PER_BATCH_MAX)
