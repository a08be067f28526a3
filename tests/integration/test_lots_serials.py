"""Lots with expiry and serials in the ledger: the item's tracking rules reject (or, per site
policy, send to review) what breaks them; conflicts with what the ledger holds wait in review;
a serial is never in two places."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.api.problems import PROBLEM_JSON
from aggregator.ledger import Ledger
from aggregator.ledger.policy import Policy
from aggregator.ledger.reads import rejected_after
from aggregator.roles import Role
from aggregator.schema import items, lots, movements, serial_moves, serials, transactions
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    audit_entry,
    batch,
    edge_client,
    running_aggregator,
    serving,
    txn,
    wait_ack,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer

K = TxnKind
DAY = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
REVIEW = Policy(tracking_violations="review")


async def add_item(engine: AsyncEngine, sku: str, **attributes: Any) -> None:
    row = {"sku": sku, "flagged": False, "created_at": DAY, **attributes}
    async with engine.begin() as conn:
        await conn.execute(sa.insert(items), [row])


async def pending(engine: AsyncEngine) -> dict[Any, str | None]:
    query = sa.select(transactions.c.id, transactions.c.review_reason).where(
        transactions.c.status == "pending"
    )
    async with engine.connect() as conn:
        return {r.id: r.review_reason for r in await conn.execute(query)}


async def lot_rows(engine: AsyncEngine) -> dict[str, date | None]:
    async with engine.connect() as conn:
        return {r.lot: r.expiry for r in await conn.execute(sa.select(lots))}


async def serial_places(engine: AsyncEngine) -> dict[str, tuple[str, str]]:
    query = sa.text(
        "SELECT s.serial, l.code, s.state FROM serials s JOIN locations l ON l.id = s.location_id"
    )
    async with engine.connect() as conn:
        return {r.serial: (r.code, r.state) for r in await conn.execute(query)}


async def test_a_lot_tracked_item_without_a_lot_is_rejected_with_the_reason(
    engine: AsyncEngine, writer: Writer
) -> None:
    await add_item(engine, "MILK", tracking="lot")
    ledger = Ledger(writer, site=SITE)
    bare, good = (
        txn(K.RECEIPT, 3, sku="MILK", to_location="A"),
        txn(K.RECEIPT, 3, sku="MILK", to_location="A", lot="L1"),
    )
    posting = await ledger.post(batch(bare, good))
    reason = "sku MILK is lot-tracked: the receipt names no lot"
    assert [(r.status, r.reason) for r in posting.results] == [
        (AckStatus.REJECTED, reason),
        (AckStatus.ACCEPTED, None),
    ]
    assert [(r.txn_id, r.reason) for r in await rejected_after(engine, 0, 10)] == [
        (bare.id, reason)
    ]
    assert await support.stock(engine) == {("MILK", "A", "L1"): 3, ("MILK", "@supplier", "L1"): -3}


async def test_with_review_the_violation_waits_and_a_person_posts_it(
    engine: AsyncEngine, writer: Writer
) -> None:
    await add_item(engine, "MILK", tracking="lot")
    ledger = Ledger(writer, site=SITE, policy=REVIEW)
    bare = txn(K.RECEIPT, 3, sku="MILK", to_location="A")
    posting = await ledger.post(batch(bare))
    assert posting.results[0].status is AckStatus.ACCEPTED
    assert await pending(engine) == {bare.id: "sku MILK is lot-tracked: the receipt names no lot"}
    assert await support.count_rows(engine, movements) == 0
    approved = await ledger.approve(bare.id, audit=audit_entry("approve"))
    assert len(approved.movements) == 1
    assert await pending(engine) == {}


async def test_an_expired_lot_is_rejected_and_shelf_life_gives_an_expiry(
    engine: AsyncEngine, writer: Writer
) -> None:
    await add_item(engine, "YOG", tracking="lot", shelf_life_days=10)
    ledger = Ledger(writer, site=SITE)
    old, fresh, dated = (
        txn(
            K.RECEIPT,
            1,
            sku="YOG",
            to_location="A",
            lot="OLD",
            expiry=date(2026, 11, 28),
            occurred_at=DAY,
        ),
        txn(K.RECEIPT, 1, sku="YOG", to_location="A", lot="NEW", occurred_at=DAY),
        txn(
            K.RECEIPT,
            1,
            sku="YOG",
            to_location="A",
            lot="D",
            expiry=date(2026, 11, 29),
            occurred_at=DAY,
        ),
    )
    posting = await ledger.post(batch(old, fresh, dated))
    assert [(r.status, r.reason) for r in posting.results] == [
        (AckStatus.REJECTED, "lot OLD of sku YOG expired on 2026-11-28, before 2026-11-29"),
        (AckStatus.ACCEPTED, None),
        (AckStatus.ACCEPTED, None),  # expiring on the day it is received: not expired
    ]
    assert await lot_rows(engine) == {
        "NEW": DAY.date() + timedelta(days=10),
        "D": date(2026, 11, 29),
    }


async def test_a_lot_named_with_another_expiry_waits_in_review_and_keeps_its_own(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    first = txn(K.RECEIPT, 2, to_location="A", lot="L", expiry=date(2027, 1, 1))
    same = txn(K.RECEIPT, 2, to_location="A", lot="L", expiry=date(2027, 1, 1))
    other = txn(K.RECEIPT, 2, to_location="A", lot="L", expiry=date(2027, 2, 1))
    await ledger.post(batch(first, same, other))
    assert await pending(engine) == {
        other.id: "lot L of sku SKU-1 has 2027-01-01 on record;"
        " this receipt names expiry 2027-02-01"
    }
    await ledger.approve(other.id, audit=audit_entry("approve"))
    assert await lot_rows(engine) == {"L": date(2027, 1, 1)}
    assert (await support.stock(engine))[("SKU-1", "A", "L")] == 6


async def test_serials_have_one_place_and_conflicts_wait_in_review(
    engine: AsyncEngine, writer: Writer
) -> None:
    await add_item(engine, "TV", tracking="serial")
    ledger = Ledger(writer, site=SITE)
    miscounted = txn(K.RECEIPT, 3, sku="TV", to_location="A", serials=("S1", "S2"))
    twice = txn(K.RECEIPT, 2, sku="TV", to_location="A", serials=("S1", "S1"))
    received = txn(K.RECEIPT, 2, sku="TV", to_location="A", serials=("S1", "S2"))
    again = txn(K.RECEIPT, 1, sku="TV", to_location="B", serials=("S1",))
    not_there = txn(K.SHIPMENT, 1, sku="TV", from_location="B", serials=("S2",))
    moved = txn(K.TRANSFER, 1, sku="TV", from_location="A", to_location="B", serials=("S2",))
    shipped = txn(K.SHIPMENT, 1, sku="TV", from_location="A", serials=("S1",))
    posting = await ledger.post(
        batch(miscounted, twice, received, again, not_there, moved, shipped)
    )
    assert [(r.status, r.reason) for r in posting.results[:2]] == [
        (
            AckStatus.REJECTED,
            "sku TV is serial-tracked: qty 3 but 2 serial(s); each serial is one unit",
        ),
        (AckStatus.REJECTED, "serial(s) listed twice: S1"),
    ]
    assert [r.status for r in posting.results[2:]] == [AckStatus.ACCEPTED] * 5
    assert await pending(engine) == {
        again.id: "serial(s) already in stock (from @supplier they would be in two places):"
        " S1 at A",
        not_there.id: "serial(s) not at B: S2 at A",
    }
    assert await serial_places(engine) == {"S1": ("@customer", "departed"), "S2": ("B", "in_stock")}
    # The transfer reversed: S2 is back at A.
    await ledger.reverse_movement(posting.movements[1].id, audit=audit_entry("reverse"))
    assert (await serial_places(engine))["S2"] == ("A", "in_stock")
    assert await support.count_rows(engine, serials) == 2


async def test_api_lots_with_on_hand_and_serials_with_history(
    engine: AsyncEngine, writer: Writer, db_url: str
) -> None:
    await add_item(engine, "TV", tracking="serial")
    ledger = Ledger(writer, site=SITE)
    soon, later = date(2026, 12, 5), date(2027, 6, 1)
    await ledger.post(
        batch(
            txn(K.RECEIPT, 5, to_location="A", lot="L1", expiry=soon),
            txn(K.TRANSFER, 2, from_location="A", to_location="B", lot="L1"),
            txn(K.RECEIPT, 4, to_location="A", lot="L2", expiry=later),
            txn(K.RECEIPT, 1, sku="TV", to_location="A", serials=("SN-9",)),
            txn(K.SHIPMENT, 1, sku="TV", from_location="A", serials=("SN-9",)),
        )
    )
    key = api_key(db_url, Role.VIEWER)
    async with serving(create_app(ApiState(engine, ledger))) as url, api_client(url, key) as http:
        response = await http.get("/lots", params={"sku": "SKU-1"})
        assert response.status_code == 200, response.text
        assert [(x["lot"], x["expiry"], x["qty"], x["on_hand"]) for x in response.json()] == [
            ("L1", "2026-12-05", 5, [{"location": "A", "qty": 3}, {"location": "B", "qty": 2}]),
            ("L2", "2027-06-01", 4, [{"location": "A", "qty": 4}]),
        ]
        expiring = await http.get("/lots", params={"expiring_before": "2027-01-01"})
        assert [x["lot"] for x in expiring.json()] == ["L1"]
        unit = await http.get("/serials/SN-9")
        assert unit.status_code == 200, unit.text
        [tv] = unit.json()
        assert (tv["sku"], tv["location"], tv["state"]) == ("TV", "@customer", "departed")
        assert [(m["kind"], m["from_location"], m["to_location"]) for m in tv["history"]] == [
            ("shipment", "A", "@customer"),
            ("receipt", "@supplier", "A"),
        ]
        bad_date = await http.get("/lots", params={"expiring_before": "soon"})
        assert (bad_date.status_code, bad_date.headers["content-type"]) == (422, PROBLEM_JSON)
        assert bad_date.json()["errors"][0]["location"] == "query.expiring_before"
        unknown_sku = await http.get("/lots", params={"sku": "NOPE"})
        assert unknown_sku.status_code == 404
        assert unknown_sku.json()["detail"].startswith("query.sku:")
        missing = await http.get("/serials/SN-0")
        assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM_JSON)
        assert missing.json()["detail"].startswith("path.serial:")
        assert (await http.get("/lots", params={"lots": "x"})).status_code == 422


async def test_over_mqtt_a_missing_lot_is_a_rejected_ack_with_the_reason(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, engine: AsyncEngine
) -> None:
    await add_item(engine, "MILK", tracking="lot")
    sent = batch(
        txn(K.RECEIPT, 2, sku="MILK", to_location="A"),
        txn(K.RECEIPT, 2, sku="MILK", to_location="A", lot="L1"),
    )
    async with (
        running_aggregator(agg_settings),
        edge_client(mosquitto, edge_filter(EdgeChannel.ACK, SITE)) as (client, inbox),
    ):
        topic = edge_topic(SITE, EDGE, EdgeChannel.TXN)
        await client.publish(topic, sent.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {t.id for t in sent.txns})
    assert [(r.status, r.reason) for r in ack.results] == [
        (AckStatus.REJECTED, "sku MILK is lot-tracked: the receipt names no lot"),
        (AckStatus.ACCEPTED, None),
    ]


async def test_a_person_approving_a_serial_listed_twice_moves_it_once(
    engine: AsyncEngine, writer: Writer
) -> None:
    """Found by the invariant tests: the serial's moves were inserted twice (a key error)."""
    await add_item(engine, "TV", tracking="serial")
    ledger = Ledger(writer, site=SITE, review_confidence_min=0.5)
    doubtful = txn(K.RECEIPT, 2, sku="TV", to_location="A", serials=("S1", "S1"), confidence=0.1)
    await ledger.post(batch(doubtful))
    approved = await ledger.approve(doubtful.id, audit=audit_entry("approve"))
    assert [m.qty for m in approved.movements] == [2]  # a person said so
    assert await serial_places(engine) == {"S1": ("A", "in_stock")}
    assert await support.count_rows(engine, serial_moves) == 1
