"""Samples the edge publishes on .../telemetry (QoS 0; may be thinned under pressure)."""

from typing import Literal

from pydantic import AwareDatetime, Field

from stockwire.base import WireModel
from stockwire.names import Ident

SAMPLES_PER_BATCH_MAX = 5000


class Sample(WireModel):
    measurement: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    device: Ident
    at: AwareDatetime
    fields: dict[str, float] = Field(min_length=1, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict, max_length=16)


class TelemetryBatch(WireModel):
    schema_version: Literal[1] = 1
    edge: Ident
    samples: tuple[Sample, ...] = Field(min_length=1, max_length=SAMPLES_PER_BATCH_MAX)
