"""Our point type: only ever built through the catalog (stockwire.measurements).

A point outside the catalog (unknown measurement, tag or field, or a missing tag) is a
programmer error: it raises. Edge samples become points as received: the sample's time is
the point's time, never rewritten.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stockwire.measurements import BY_NAME, COMMON_TAGS, Measurement, Origin
from stockwire.telemetry import Sample

TAG_CHARS_MAX = 64  # tag values come from the wire (edge levels of topics): keep them short


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    origin: Origin
    tags: tuple[tuple[str, str], ...]  # sorted by name
    fields: tuple[tuple[str, float], ...]
    at: datetime  # aware


class PointError(AssertionError):
    """A point outside the catalog: a bug in the code that built it, never bad input."""


def point(name: str, tags: Mapping[str, str], fields: Mapping[str, float], at: datetime) -> Point:
    """A point of the catalog's measurement `name`: every tag it names, only its fields."""
    measurement = BY_NAME.get(name)
    if measurement is None:
        raise PointError(f"no measurement {name!r} in the catalog")
    return _point(measurement, tags, fields, at, measurement.all_tags)


def _point(
    measurement: Measurement,
    tags: Mapping[str, str],
    fields: Mapping[str, float],
    at: datetime,
    required: tuple[str, ...],
) -> Point:
    name = measurement.name
    _check(measurement, tags, fields, required)
    if at.tzinfo is None:
        raise PointError(f"{name}: a point's time must be timezone-aware")
    return Point(
        name,
        measurement.origin,
        tuple(sorted((k, v[:TAG_CHARS_MAX]) for k, v in tags.items())),
        tuple((k, float(v)) for k, v in fields.items()),
        at,
    )


def _check(
    measurement: Measurement,
    tags: Mapping[str, str],
    fields: Mapping[str, float],
    required: tuple[str, ...],
) -> None:
    name = measurement.name
    if missing := sorted(set(required) - set(tags)):
        raise PointError(f"{name}: tag(s) {missing} missing")
    if unknown := sorted(set(tags) - set(measurement.all_tags)):
        raise PointError(f"{name}: no tag(s) {unknown} in the catalog")
    if not fields:
        raise PointError(f"{name}: a point needs a field")
    if unknown := sorted(set(fields) - set(measurement.fields)):
        raise PointError(f"{name}: no field(s) {unknown} in the catalog")


def from_sample(site: str, edge: str, sample: Sample) -> Point:
    """An edge sample as received (its time kept): tags site, edge, device and its own. Of
    the measurement's own tags the sample carries those it has (the contract allows fewer)."""
    measurement = BY_NAME[sample.measurement]
    assert measurement.origin is Origin.EDGE, "stockwire.telemetry lets only edge ones in"
    tags = {**sample.tags, "site": site, "edge": edge, "device": sample.device}
    return _point(measurement, tags, sample.fields, sample.at, COMMON_TAGS[Origin.EDGE])
