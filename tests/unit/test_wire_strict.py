"""What the published JSON Schema rejects, parsing the wire rejects (DESIGN §9).

Every leaf of a valid message is replaced in turn by values of other types and shapes (and every key
removed, and an unknown one added); each mutant that the committed schema refuses must fail
model_validate_json too. The converse need not hold: the models check more than the schema says
(an adjustment needs exactly one side, ...).
"""

import json
from collections.abc import Iterator
from copy import deepcopy
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from stockwire.ack import Ack
from stockwire.schema import SCHEMA_DIR
from stockwire.status import EdgeStatus
from stockwire.txn import TxnBatch

UUID_TEXT = "0190a0b2-1234-7abc-8def-0123456789ab"
TIME = "2026-11-29T10:00:00.123456Z"
VALID: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "TxnBatch": (
        TxnBatch,
        {
            "schema_version": 1,
            "edge": "e1",
            "sent_at": TIME,
            "txns": [
                {
                    "id": UUID_TEXT,
                    "edge": "e1",
                    "device": "d1",
                    "seq": 7,
                    "kind": "receipt",
                    "gtin": "04006381333931",
                    "lot": "L1",
                    "expiry": "2027-01-31",
                    "qty": 3,
                    "to_location": "DOCK-1",
                    "occurred_at": TIME,
                    "recorded_at": "2026-11-29T11:00:00+01:00",
                    "confidence": 0.75,
                    "evidence": {"raw": "x", "read_count": 2, "rssi_dbm": -60.5, "antennas": [1]},
                }
            ],
        },
    ),
    "EdgeStatus": (
        EdgeStatus,
        {
            "edge": "e1",
            "state": "online",
            "at": TIME,
            "version": "0.1.0",
            "outbox_rows": 3,
            "outbox_rows_max": 10,
            "outbox_full": False,
            "devices": {"d1": {"kind": "scanner", "state": "up", "detail": None}},
        },
    ),
    "Ack": (
        Ack,
        {"edge": "e1", "acked_at": TIME, "results": [{"id": UUID_TEXT, "status": "accepted"}]},
    ),
}
REPLACEMENTS: list[Any] = [
    0,
    1,
    -1,
    1.0,
    1.5,
    True,
    None,
    "",
    "1",
    "1.5",
    "true",
    "online",
    [],
    {},
    [1],
    1764410400,
    "1764410400",
    "2026-11-29 10:00:00Z",
    "2026-11-29T10:00:00+0100",
    "2026-11-29T10:00Z",
    "2026-11-29T10:00:00",
    "2026-11-29",
    "20270131",
    "2027-01-31T00:00:00Z",
    "0190a0b212347abc8def0123456789ab",
    "{0190a0b2-1234-7abc-8def-0123456789ab}",
    "urn:uuid:0190a0b2-1234-7abc-8def-0123456789ab",
]


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*path, i)
            yield from _paths(value, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _mutants(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for path in _paths(doc):
        where = ".".join(map(str, path))
        for value in REPLACEMENTS:
            yield f"{where}={value!r}", _set(doc, path, value)
        parent = _set(doc, path, None)
        target = parent
        for key in path[:-1]:
            target = target[key]
        if isinstance(target, dict):
            del target[path[-1]]
            yield f"{where} removed", parent
            yield f"{where}.unknown added", _set(doc, (*path[:-1], "unknown"), 1)


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _parses(model: type[BaseModel], doc: Any) -> bool:
    try:
        model.model_validate_json(json.dumps(doc))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_valid_message_passes_both(name: str) -> None:
    model, doc = VALID[name]
    assert _validator(name).is_valid(doc)
    assert _parses(model, doc)


@pytest.mark.parametrize("name", sorted(VALID))
def test_what_the_schema_rejects_the_wire_rejects(name: str) -> None:
    model, doc = VALID[name]
    validator = _validator(name)
    refused_by_schema = 0
    let_through: list[str] = []
    for what, mutant in _mutants(doc):
        if validator.is_valid(mutant):
            continue
        refused_by_schema += 1
        if _parses(model, mutant):
            let_through.append(what)
    assert refused_by_schema > 100  # the corpus really exercises the schema
    assert let_through == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sent_at", 1764410400),
        ("sent_at", "1764410400"),
        ("sent_at", "2026-11-29 10:00:00Z"),
        ("sent_at", "2026-11-29T10:00:00+0100"),
    ],
)
def test_an_epoch_or_a_non_rfc3339_sent_at_is_refused(field: str, value: Any) -> None:
    model, doc = VALID["TxnBatch"]
    with pytest.raises(ValidationError, match="RFC 3339"):
        model.model_validate_json(json.dumps(_set(doc, (field,), value)))
