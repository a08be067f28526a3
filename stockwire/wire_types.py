"""Field types that make the wire exactly as strict as the published JSON Schema.

pydantic's lax JSON parsing would take "5" or 5.0 for an integer, "true" for a boolean, an epoch
number for a time, and time texts that are not RFC 3339 (`2026-11-29 10:00Z`, `+0100`) or UUIDs
without hyphens. Scalars are therefore pydantic's Strict types, and times and ids check the shape
of their text before pydantic parses it: what the schema (`format: date-time`, `format: uuid`)
rejects, the wire rejects. Python values (the edge building a model) pass through.

Field-level strictness rather than `strict=True` per call: strict calls refuse every text for a
time or a UUID once a validator has run, and parsing them in Python doubles validation cost.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BeforeValidator, StrictBool, StrictFloat, StrictInt

_RFC3339_SHORTEST = len("2026-11-29T10:00:00Z")


def _rfc3339(value: Any) -> Any:
    """YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); pydantic then checks digits and ranges."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a date-time must be an RFC 3339 text, not a number")  # noqa: TRY004 (pydantic reports ValueError)
    shape_ok = (
        len(value) >= _RFC3339_SHORTEST
        and value[4] == "-"
        and value[7] == "-"
        and value[10] in "Tt"
        and value[13] == ":"
        and value[16] == ":"
        and value[19] in ".Zz+-"
        and (value[-1] in "Zz" or (value[-6] in "+-" and value[-3] == ":"))
    )
    if not shape_ok:
        raise ValueError("not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM))")
    return value


def _uuid_text(value: Any) -> Any:
    """The RFC 4122 text form only: 36 characters, hyphens at 8, 13, 18 and 23."""
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise ValueError("a UUID must be a text")  # noqa: TRY004
    # One concatenation: this runs for every id on the ingest path.
    if len(value) != 36 or value[8] + value[13] + value[18] + value[23] != "----":
        raise ValueError("not a UUID in its 8-4-4-4-12 hyphenated form")
    return value


def _full_date(value: Any) -> Any:
    """YYYY-MM-DD only (RFC 3339 full-date): no time part, no number."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("a date must be a YYYY-MM-DD text")  # noqa: TRY004
    if len(value) != len("2027-01-31") or value[4] != "-" or value[7] != "-":
        raise ValueError("not a YYYY-MM-DD date")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1 in Python, not in JSON
        raise ValueError("a number, not a boolean")  # noqa: TRY004
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
WireUuid = Annotated[UUID, BeforeValidator(_uuid_text)]
WireDate = Annotated[date, BeforeValidator(_full_date)]
Version1 = Annotated[Literal[1], BeforeValidator(_not_bool)]

__all__ = [
    "StrictBool",
    "StrictFloat",
    "StrictInt",
    "Timestamp",
    "Version1",
    "WireDate",
    "WireUuid",
]
