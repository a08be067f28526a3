from datetime import UTC, datetime

from aggregator.ingest import _low_stock_alert
from aggregator.ledger.reorder import LowStock
from stockwire.events import AlertKind, Severity

AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_a_location_point_names_the_location_in_subject_and_message() -> None:
    alert = _low_stock_alert("s1", LowStock("SKU-1", None, 3, 4, raised=True, location="A-1"), AT)
    assert (alert.kind, alert.severity) == (AlertKind.LOW_STOCK, Severity.WARNING)
    assert alert.subject == {
        "qty": "3",
        "reorder_point": "4",
        "sku": "SKU-1",
        "location": "A-1",
        "state": "raised",
    }
    assert alert.message == "SKU-1 at A-1: 3 on hand, below the reorder point 4"


def test_the_items_own_point_names_no_location() -> None:
    alert = _low_stock_alert("s1", LowStock(None, "04006380000001", 9, 4, raised=False), AT)
    assert alert.severity == Severity.INFO
    assert "location" not in alert.subject
    assert alert.message == "04006380000001: 9 on hand, back at or above the reorder point 4"
