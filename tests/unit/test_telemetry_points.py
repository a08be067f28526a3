"""Points only through the catalog; the aggregator's own measurements from ledger outcomes."""

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from aggregator.ledger.apply import StockLevel
from aggregator.telemetry import measure
from aggregator.telemetry.influx import body, epoch_ns, line
from aggregator.telemetry.points import Point, PointError, from_sample, point
from stockwire.ack import AckStatus
from stockwire.events import Alert, AlertKind, Movement, Severity
from stockwire.measurements import BY_NAME, Origin
from stockwire.status import DeviceState, DeviceStatus, EdgeState, EdgeStatus
from stockwire.telemetry import Sample
from stockwire.txn import TxnKind

AT = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "tags", "fields", "says"),
    [
        ("stock_levels", {"site": "s"}, {"qty": 1}, "no measurement 'stock_levels'"),
        ("stock_level", {"site": "s", "item": "A"}, {"qty": 1}, "tag(s) ['location'] missing"),
        (
            "stock_level",
            {"site": "s", "item": "A", "location": "L", "lot": "x"},
            {"qty": 1},
            "no tag(s) ['lot']",
        ),
        ("stock_level", {"site": "s", "item": "A", "location": "L"}, {"units": 1}, "no field"),
        ("stock_level", {"site": "s", "item": "A", "location": "L"}, {}, "needs a field"),
    ],
)
def test_a_point_outside_the_catalog_is_a_programmer_error(
    name: str, tags: dict[str, str], fields: dict[str, float], says: str
) -> None:
    with pytest.raises(PointError, match=re.escape(says)):
        point(name, tags, fields, AT)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(PointError, match="timezone-aware"):
        point(
            "alerts",
            {"site": "s", "kind": "k", "severity": "info"},
            {"count": 1},
            AT.replace(tzinfo=None),
        )


def test_an_edge_sample_keeps_its_time_and_gets_site_edge_and_device() -> None:
    sample = Sample(
        measurement="lane_weight",
        device="shelf-1",
        at=AT,
        fields={"grams": 1234.5, "stable": 1.0},
        tags={"lane": "3"},
    )
    made = from_sample("site1", "edge1", sample)
    assert made.at == AT
    assert made.origin is Origin.EDGE
    assert dict(made.tags) == {"site": "site1", "edge": "edge1", "device": "shelf-1", "lane": "3"}
    assert dict(made.fields) == {"grams": 1234.5, "stable": 1.0}
    # a sample without its measurement's own tags is still a point (the contract allows it)
    bare = Sample(measurement="rfid_antenna", device="door-1", at=AT, fields={"reads": 3.0})
    assert dict(from_sample("site1", "edge1", bare).tags) == {
        "site": "site1",
        "edge": "edge1",
        "device": "door-1",
    }


def test_line_protocol_escapes_tags_and_keeps_the_time_to_the_nanosecond() -> None:
    made = point("stock_level", {"site": "s", "item": "A B,c=d", "location": "L-1"}, {"qty": 7}, AT)
    assert line(made) == (
        r"stock_level,item=A\ B\,c\=d,location=L-1,site=s qty=7 " + str(epoch_ns(AT))
    )
    assert epoch_ns(AT) == 1772353815123456000
    assert epoch_ns(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1000


def test_non_finite_values_are_left_out_and_so_is_a_point_of_nothing_else() -> None:
    tags = {"site": "s", "edge": "e", "device": "d"}
    nothing = point("scans", tags, {"scans": float("nan")}, AT)
    some = point("scans", tags, {"scans": 2.0, "unreadable": float("inf")}, AT)
    assert line(nothing) == ""
    assert (
        body([nothing, some, nothing])
        == line(some)
        == f"scans,device=d,edge=e,site=s scans=2 {epoch_ns(AT)}"
    )


def _movement(
    edge: str, kind: TxnKind, qty: int, delay_s: float, txn: UUID | None = None
) -> Movement:
    return Movement.model_construct(
        id=1,
        txn_id=txn or uuid4(),
        edge=edge,
        seq=0,
        kind=kind,
        sku="A",
        gtin=None,
        lot=None,
        qty=qty,
        from_location="@supplier",
        to_location="L",
        occurred_at=AT - timedelta(seconds=delay_s),
        committed_at=AT,
    )


def _fields(points: list[Point]) -> list[tuple[dict[str, str], dict[str, float]]]:
    return [(dict(p.tags), dict(p.fields)) for p in points]


def test_movements_are_summed_per_edge_kind_and_status() -> None:
    moved = [
        _movement("e1", TxnKind.RECEIPT, 5, 1),
        _movement("e1", TxnKind.RECEIPT, 2, 1),
        _movement("e2", TxnKind.PICK, 1, 1),
    ]
    assert _fields(measure.movements("s", moved, [], AT)) == [
        (
            {"site": "s", "edge": "e1", "kind": "receipt", "status": "posted"},
            {"count": 2, "units": 7},
        ),
        ({"site": "s", "edge": "e2", "kind": "pick", "status": "posted"}, {"count": 1, "units": 1}),
    ]
    by_api = measure.movements("s", moved[:1], [], AT, edge="api")
    assert dict(by_api[0].tags)["edge"] == "api"


def test_posting_delay_counts_each_transaction_once_with_nearest_rank_percentiles() -> None:
    txn = uuid4()
    moved = [
        _movement("e1", TxnKind.TRANSFER, 1, 4.0, txn),
        _movement("e1", TxnKind.TRANSFER, 1, 4.0, txn),
    ]
    moved += [_movement("e1", TxnKind.PICK, 1, float(d)) for d in (1, 2, 3, 10)]
    [made] = measure.posting_delays("s", moved, AT)
    assert dict(made.fields) == {"count": 5, "p50_s": 3.0, "p95_s": 10.0, "max_s": 10.0}
    assert measure.percentile([1.0, 2.0], 0.5) == 1.0


def test_ingest_counts_batches_txns_duplicates_and_the_largest_lag() -> None:
    received = [
        measure.Received("e1", 2, [AckStatus.ACCEPTED, AckStatus.DUPLICATE], 0.5),
        measure.Received("e1", 1, [AckStatus.DUPLICATE], 2.5),
    ]
    assert _fields(measure.ingest("s", received, AT)) == [
        ({"site": "s", "edge": "e1"}, {"batches": 2, "txns": 3, "duplicates": 2, "lag_s": 2.5})
    ]


def test_status_alert_dead_letter_and_stock_level_points() -> None:
    will = EdgeStatus(edge="e1", state=EdgeState.OFFLINE, at=AT - timedelta(hours=1), version="1")
    [(tags, fields)] = _fields([measure.edge_status("s", "e1", will, AT)])
    assert tags == {"site": "s", "edge": "e1"}
    assert fields == {"online": 0.0, "outbox_full": 0.0, "devices_down": 0}  # no outbox_rows
    born = EdgeStatus(
        edge="e1",
        state=EdgeState.ONLINE,
        at=AT,
        version="1",
        outbox_rows=4,
        devices={"d1": DeviceStatus(kind="rfid", state=DeviceState.DOWN)},
    )
    assert dict(measure.edge_status("s", "e1", born, AT).fields)["devices_down"] == 1
    letter = measure.dead_letter("s", "e9", "stockwire/v1/s/e9/telemetry", AT)
    assert dict(letter.tags) == {"site": "s", "edge": "e9", "channel": "telemetry"}
    alert = Alert(
        site="s", kind=AlertKind.DEAD_LETTER, severity=Severity.WARNING, at=AT, message="m"
    )
    assert dict(measure.alert("s", alert).tags) == {
        "site": "s",
        "kind": "dead_letter",
        "severity": "warning",
    }
    [level] = measure.stock_levels("s", [StockLevel("A", "L-1", -3)], AT)
    assert (dict(level.tags), dict(level.fields)) == (
        {"site": "s", "item": "A", "location": "L-1"},
        {"qty": -3.0},
    )


def test_every_aggregator_measurement_has_a_builder() -> None:
    """The sink writes every aggregator measurement of the catalog (none is forgotten)."""
    built = {
        "stock_level",
        "movements",
        "posting_delay",
        "ingest",
        "edge_status",
        "dead_letters",
        "alerts",
    }
    assert built == {m.name for m in BY_NAME.values() if m.origin is Origin.AGGREGATOR}
