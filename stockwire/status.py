"""Retained edge status on .../status: the birth message and the last will."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from stockwire.base import WireModel
from stockwire.names import Ident, ShortText


class EdgeState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceState(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class DeviceStatus(WireModel):
    kind: str = Field(max_length=32)
    state: DeviceState
    detail: ShortText | None = None


class EdgeStatus(WireModel):
    """`at` of a last will is the time the will was registered (at connect)."""

    schema_version: Literal[1] = 1
    edge: Ident
    state: EdgeState
    at: AwareDatetime
    version: str = Field(max_length=32)
    outbox_rows: int | None = Field(default=None, ge=0)
    outbox_rows_max: int | None = Field(default=None, ge=1)
    outbox_full: bool = False
    devices: dict[Ident, DeviceStatus] = Field(default_factory=dict)
