"""Samples the edge publishes on .../telemetry (QoS 0; may be thinned under pressure).

Every sample names an edge measurement of the catalog (stockwire.measurements) and only its
fields and tags; anything else makes the batch invalid (a dead letter at the aggregator).
"""

from typing import Annotated, Self

from pydantic import Field, JsonValue, model_validator

from stockwire.base import WireModel
from stockwire.measurements import CATALOG, Origin, edge_measurement
from stockwire.names import Ident
from stockwire.wire_types import StrictFloat, Timestamp, Version1

SAMPLES_PER_BATCH_MAX = 5000
# JSON has no NaN or infinity; pydantic would take its `NaN` / `Infinity` extensions.
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
_EDGE_MEASUREMENTS: list[JsonValue] = [m.name for m in CATALOG if m.origin is Origin.EDGE]


class Sample(WireModel):
    measurement: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        json_schema_extra={"enum": _EDGE_MEASUREMENTS},
        description="an edge measurement of the catalog; its fields and tags are listed there",
    )
    device: Ident
    at: Timestamp
    fields: dict[str, FiniteFloat] = Field(min_length=1, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict, max_length=16)

    @model_validator(mode="after")
    def _in_catalog(self) -> Self:
        measurement = edge_measurement(self.measurement)
        if unknown := sorted(set(self.fields) - set(measurement.fields)):
            raise ValueError(f"measurement {self.measurement!r} has no field(s) {unknown}")
        if unknown := sorted(set(self.tags) - set(measurement.tags)):
            raise ValueError(f"measurement {self.measurement!r} has no tag(s) {unknown}")
        return self


class TelemetryBatch(WireModel):
    schema_version: Version1 = 1
    edge: Ident
    samples: tuple[Sample, ...] = Field(min_length=1, max_length=SAMPLES_PER_BATCH_MAX)
