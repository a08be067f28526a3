import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from stockwire.ack import Ack, AckResult, AckStatus
from stockwire.events import Alert, AlertKind, LedgerEvents, Movement, Severity
from stockwire.ids import uuid7
from stockwire.measurements import CATALOG
from stockwire.status import DeviceState, DeviceStatus, EdgeState, EdgeStatus
from stockwire.telemetry import Sample, TelemetryBatch
from stockwire.txn import StockTransaction, TxnBatch, TxnKind

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def txn(**overrides: Any) -> StockTransaction:
    fields: dict[str, Any] = {
        "id": uuid7(),
        "edge": "dock-1",
        "device": "scanner-1",
        "seq": 1,
        "kind": "receipt",
        "gtin": "04006381333931",
        "qty": 3,
        "to_location": "DOCK-1",
        "occurred_at": NOW,
        "recorded_at": NOW,
    }
    fields.update(overrides)
    return StockTransaction.model_validate(fields)


def test_txn_round_trips_through_json() -> None:
    original = txn(lot="L1", expiry="2027-01-31", evidence={"raw": "]E04006381333931"})
    again = StockTransaction.model_validate_json(original.model_dump_json())
    assert again == original
    assert again.expiry is not None
    assert again.expiry.isoformat() == "2027-01-31"


def test_txn_is_frozen() -> None:
    t = txn()
    with pytest.raises(ValidationError):
        t.qty = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
        ({"gtin": None}, "needs a sku or a gtin"),
        ({"qty": 0}, "qty must be > 0 for a receipt"),
        ({"qty": -1}, "greater than or equal to 0"),
        ({"to_location": None}, "a receipt needs to_location"),
        ({"kind": "shipment", "to_location": None}, "a shipment needs from_location"),
        ({"kind": "transfer", "from_location": "A-1", "to_location": None}, "needs to_location"),
        ({"kind": "transfer", "from_location": "A-1", "to_location": "A-1"}, "are the same"),
        ({"kind": "adjustment", "from_location": "A-1"}, "exactly one of"),
        ({"kind": "count", "from_location": "A-1"}, "a count takes no from_location"),
        ({"occurred_at": "2026-11-21T12:00:00"}, "not an RFC 3339 date-time"),
        ({"gtin": "4006381333931"}, "String should match pattern"),
        ({"edge": "dock/1"}, "String should match pattern"),
        ({"confidence": 1.5}, "less than or equal to 1"),
        ({"schema_version": 2}, "Input should be 1"),
    ],
)
def test_txn_rejects_bad_shapes(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        txn(**overrides)


def test_count_allows_zero_and_adjustment_takes_one_side() -> None:
    assert txn(kind="count", qty=0).qty == 0
    found = txn(kind="adjustment", to_location="A-1")
    lost = txn(kind="adjustment", to_location=None, from_location="A-1")
    assert (found.to_location, lost.from_location) == ("A-1", "A-1")


def test_every_kind_has_a_valid_shape() -> None:
    shapes: dict[TxnKind, dict[str, str | None]] = {
        TxnKind.RECEIPT: {"to_location": "DOCK-1"},
        TxnKind.SHIPMENT: {"from_location": "A-1", "to_location": None},
        TxnKind.PICK: {"from_location": "A-1", "to_location": None},
        TxnKind.RETURN: {"to_location": "DOCK-1"},
        TxnKind.PUTAWAY: {"from_location": "DOCK-1", "to_location": "A-1"},
        TxnKind.TRANSFER: {"from_location": "A-1", "to_location": "B-1"},
        TxnKind.ADJUSTMENT: {"to_location": "A-1"},
        TxnKind.COUNT: {"to_location": "A-1"},
    }
    assert set(shapes) == set(TxnKind)
    for kind, where in shapes.items():
        assert txn(kind=kind.value, **where).kind is kind


def test_batch_refuses_foreign_edge_and_empty() -> None:
    with pytest.raises(ValidationError, match="names edge 'other'"):
        TxnBatch(edge="dock-1", sent_at=NOW, txns=(txn(), txn(edge="other")))
    with pytest.raises(ValidationError, match="at least 1 item"):
        TxnBatch(edge="dock-1", sent_at=NOW, txns=())


def test_other_messages_round_trip() -> None:
    t = txn()
    messages = [
        TxnBatch(edge="dock-1", sent_at=NOW, txns=(t,)),
        Ack(
            edge="dock-1",
            acked_at=NOW,
            results=(
                AckResult(id=t.id, status=AckStatus.ACCEPTED),
                AckResult(id=uuid7(), status=AckStatus.REJECTED, reason="conflict"),
            ),
        ),
        TelemetryBatch(
            edge="dock-1",
            samples=(Sample(measurement="scans", device="s1", at=NOW, fields={"scans": 1.0}),),
        ),
        EdgeStatus(
            edge="dock-1",
            state=EdgeState.ONLINE,
            at=NOW,
            version="0.1.0",
            devices={"s1": DeviceStatus(kind="scanner", state=DeviceState.UP)},
        ),
        LedgerEvents(
            site="s",
            movements=(
                Movement(
                    id=1,
                    txn_id=t.id,
                    edge="dock-1",
                    seq=1,
                    kind=TxnKind.RECEIPT,
                    sku=None,
                    gtin=t.gtin,
                    lot=None,
                    qty=3,
                    from_location="@supplier",
                    to_location="DOCK-1",
                    occurred_at=NOW,
                    committed_at=NOW,
                ),
            ),
        ),
        Alert(site="s", kind=AlertKind.SEQ_GAP, severity=Severity.WARNING, at=NOW, message="gap"),
    ]
    for message in messages:
        text = message.model_dump_json()
        assert type(message).model_validate_json(text) == message
        assert json.loads(text)["schema_version"] == 1


@pytest.mark.parametrize(
    ("sample", "why"),
    [
        ({"measurement": "scan_rate", "fields": {"scans": 1.0}}, "unknown telemetry measurement"),
        ({"measurement": "stock_level", "fields": {"qty": 1.0}}, "unknown telemetry measurement"),
        ({"measurement": "scans", "fields": {"v": 1.0}}, "has no field(s) ['v']"),
        (
            {"measurement": "lane_weight", "fields": {"grams": 1.0}, "tags": {"bin": "x"}},
            "has no tag(s) ['bin']",
        ),
    ],
)
def test_telemetry_samples_stay_inside_the_catalog(sample: dict[str, object], why: str) -> None:
    raw = {"device": "s1", "at": "2026-11-29T10:00:00Z", **sample}
    with pytest.raises(ValidationError, match=re.escape(why)):
        Sample.model_validate(raw)


def test_every_catalog_tag_and_field_is_a_valid_name() -> None:
    names = [m.name for m in CATALOG]
    assert len(names) == len(set(names))
    for measurement in CATALOG:
        tags = measurement.all_tags
        assert len(tags) == len(set(tags)), measurement.name
        assert not set(tags) & set(measurement.fields), measurement.name
        for name in (measurement.name, *tags, *measurement.fields):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_telemetry_fields_are_finite(value: str) -> None:
    raw = (
        '{"measurement": "lane_weight", "device": "s1", "at": "2026-11-29T10:00:00Z", '
        f'"fields": {{"grams": {value}}}}}'
    )
    with pytest.raises(ValidationError, match="finite number"):
        Sample.model_validate_json(raw)
