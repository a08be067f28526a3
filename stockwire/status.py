"""Retained edge status on .../status: the birth message and the last will."""

from enum import StrEnum

from pydantic import Field

from stockwire.base import WireModel
from stockwire.names import Ident, ShortText
from stockwire.wire_types import StrictBool, StrictInt, Timestamp, Version1


class EdgeState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"  # answering, but with errors or timeouts (some lanes, some polls)
    DOWN = "down"
    UNKNOWN = "unknown"


class DeviceStatus(WireModel):
    kind: str = Field(max_length=32)
    state: DeviceState
    detail: ShortText | None = None


class EdgeStatus(WireModel):
    """`at` of a last will is the time the will was registered (at connect)."""

    schema_version: Version1 = 1
    edge: Ident
    state: EdgeState
    at: Timestamp
    version: str = Field(max_length=32)
    outbox_rows: StrictInt | None = Field(default=None, ge=0)
    outbox_rows_max: StrictInt | None = Field(default=None, ge=1)
    outbox_full: StrictBool = False
    devices: dict[Ident, DeviceStatus] = Field(default_factory=dict)
