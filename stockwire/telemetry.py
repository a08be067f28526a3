"""Samples the edge publishes on .../telemetry (QoS 0; may be thinned under pressure)."""

from pydantic import Field

from stockwire.base import WireModel
from stockwire.names import Ident
from stockwire.wire_types import StrictFloat, Timestamp, Version1

SAMPLES_PER_BATCH_MAX = 5000


class Sample(WireModel):
    measurement: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    device: Ident
    at: Timestamp
    fields: dict[str, StrictFloat] = Field(min_length=1, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict, max_length=16)


class TelemetryBatch(WireModel):
    schema_version: Version1 = 1
    edge: Ident
    samples: tuple[Sample, ...] = Field(min_length=1, max_length=SAMPLES_PER_BATCH_MAX)
