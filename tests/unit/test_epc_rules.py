"""The EPC rules alone (no database): which transactions with EPCs wait in review, and why."""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from aggregator.ledger.epcs import EpcBook
from stockwire.txn import StockTransaction, TxnKind

K = TxnKind
E1, E2 = "30340242201D8840009EFD01", "30340242201D8840009EFD02"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def tagged(kind: TxnKind, *epcs: str, **fields: Any) -> StockTransaction:
    values: dict[str, Any] = {
        "id": uuid4(),
        "edge": "edge1",
        "device": "portal1",
        "seq": 1,
        "kind": kind,
        "gtin": "04006381333931",
        "qty": len(epcs),
        "epcs": epcs,
        "occurred_at": NOW,
        "recorded_at": NOW,
    }
    return StockTransaction.model_validate(values | fields)


@pytest.mark.parametrize(
    ("where", "txn", "expected"),
    [
        ({}, tagged(K.RECEIPT, E1, to_location="DOCK-1"), None),  # never seen: anywhere
        ({E1: "@customer"}, tagged(K.RETURN, E1, to_location="DOCK-1"), None),  # departed
        ({E1: "DOCK-1"}, tagged(K.SHIPMENT, E1.lower(), from_location="DOCK-1"), None),
        ({E1: "DOCK-1"}, tagged(K.TRANSFER, E1, from_location="DOCK-1", to_location="A-1"), None),
        ({E1: "DOCK-1"}, tagged(K.RECEIPT, E1, to_location="DOCK-1"), "count twice"),
        ({E1: "A-1"}, tagged(K.RETURN, E1, to_location="A-2"), "from @customer"),
        ({E1: "A-1"}, tagged(K.ADJUSTMENT, E1, to_location="A-1"), "from @loss"),
        (
            {E1: "A-1"},
            tagged(K.TRANSFER, E1, from_location="@transit", to_location="A-2"),
            "from @transit",
        ),
        ({E1: "A-1"}, tagged(K.PICK, E1, from_location="B-1"), "elsewhere than B-1: "),
        ({E1: "A-1"}, tagged(K.ADJUSTMENT, E1, from_location="B-1"), "elsewhere than B-1: "),
        ({}, tagged(K.RECEIPT, E1, E2, to_location="A-1", qty=3), "qty 3 but 2 EPC(s)"),
        ({}, tagged(K.RECEIPT, E1, E1.lower(), to_location="A-1"), "1 EPC(s) listed twice"),
        ({E1: "A-1"}, tagged(K.COUNT, E1, E2, to_location="B-1", qty=7), None),  # counts move none
    ],
)
def test_review_rules(where: dict[str, str], txn: StockTransaction, expected: str | None) -> None:
    reason = EpcBook(dict(where)).review(txn)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_a_posting_sees_the_moves_before_it() -> None:
    book = EpcBook({})
    received = tagged(K.RECEIPT, E1, to_location="DOCK-1")
    assert book.review(received) is None
    book.move(received)
    assert book.review(tagged(K.RECEIPT, E1, to_location="DOCK-2")) is not None
    shipped = tagged(K.SHIPMENT, E1, from_location="DOCK-1")
    assert book.review(shipped) is None
    book.move(shipped)
    assert book.review(tagged(K.RETURN, E1, to_location="DOCK-2")) is None


def test_moves_from_elsewhere_may_follow_but_receipts_never() -> None:
    book = EpcBook({E1: "DOCK-1"}, review_moved_elsewhere=False)
    assert book.review(tagged(K.SHIPMENT, E1, from_location="DOCK-2")) is None
    assert book.review(tagged(K.RECEIPT, E1, to_location="DOCK-2")) is not None
