"""Reorder on SQLite and PostgreSQL: low_stock is raised once when an item's stock (over its
physical locations) falls below its reorder point and cleared when it is back, kept across
restarts; published over MQTT by ingest; GET /reorder/suggestions."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.database import create_engine
from aggregator.ledger import Ledger
from aggregator.ledger.reads import audit_after
from aggregator.roles import Role
from aggregator.schema import items, reorder_alerts, reorder_points
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.events import Alert, AlertKind, Severity
from stockwire.topics import EdgeChannel, SiteChannel, edge_filter, edge_topic, site_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    batch,
    edge_client,
    running_aggregator,
    serving,
    txn,
    wait_ack,
)
from tests.integration.test_api_access import assert_problem

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger
agg_settings = support.agg_settings

K = TxnKind
TXN_TOPIC = edge_topic(SITE, EDGE, EdgeChannel.TXN)
ACKS = edge_filter(EdgeChannel.ACK, SITE)
ALERTS = site_topic(SITE, SiteChannel.ALERTS)


async def set_reorder(engine: AsyncEngine, sku: str, point: int, max_qty: int | None) -> None:
    async with engine.begin() as conn:
        values = {"reorder_point": point, "max_qty": max_qty}
        await conn.execute(sa.update(items).where(items.c.sku == sku).values(**values))


def states(posting: Any) -> list[tuple[str | None, int, bool]]:
    return [(low.sku, low.qty, low.raised) for low in posting.low_stock]


async def test_low_stock_is_raised_once_and_cleared(
    ledger: Ledger, engine: AsyncEngine, writer: Writer
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1")))
    await set_reorder(engine, "SKU-1", 5, 20)
    assert states(await ledger.post(batch(txn(K.PICK, 5, from_location="A-1")))) == []
    low = await ledger.post(batch(txn(K.PICK, 1, from_location="A-1")))
    assert states(low) == [("SKU-1", 4, True)]
    assert states(await ledger.post(batch(txn(K.PICK, 1, from_location="A-1")))) == []
    again = Ledger(writer, site=SITE)  # a restart: the state is in the database
    # Moves to @transit leave the site's physical stock: still low, nothing raised again.
    moved = await again.post(batch(txn(K.SHIPMENT, 1, from_location="A-1", to_location="@transit")))
    assert states(moved) == []
    back = await again.post(batch(txn(K.RECEIPT, 3, to_location="B-1")))
    assert states(back) == [("SKU-1", 5, False)]
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(reorder_alerts))).all() == []


async def test_items_without_a_reorder_point_never_alert(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 1, to_location="A-1")))
    assert states(await ledger.post(batch(txn(K.PICK, 3, from_location="A-1")))) == []


async def test_reorder_suggestions_order_up_to_max(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    await ledger.post(
        batch(
            txn(K.RECEIPT, 3, to_location="A-1"),
            txn(K.RECEIPT, 2, to_location="B-1"),
            txn(K.RECEIPT, 9, to_location="A-1", sku="SKU-2"),
            txn(K.RECEIPT, 1, to_location="A-1", sku="SKU-3"),
        )
    )
    await set_reorder(engine, "SKU-1", 6, 20)  # 5 on hand: order 15
    await set_reorder(engine, "SKU-2", 6, None)  # 9: not low
    await set_reorder(engine, "SKU-3", 4, None)  # 1: order 3, to the reorder point
    app = create_app(ApiState(engine, ledger))
    async with serving(app) as url, api_client(url, api_key(db_url, Role.VIEWER)) as http:
        site = await http.get("/reorder/suggestions")
        here = await http.get("/reorder/suggestions", params={"within": "B-1"})
        missing = await http.get("/reorder/suggestions", params={"within": "NOPE"})
        unknown = await http.get("/reorder/suggestions", params={"sku": "SKU-1"})
        async with api_client(url) as nobody:
            anonymous = await nobody.get("/reorder/suggestions")
    assert site.status_code == 200, site.text
    assert [(r["sku"], r["on_hand"], r["order_qty"], r["location"]) for r in site.json()] == [
        ("SKU-1", 5, 15, None),
        ("SKU-3", 1, 3, None),
    ]
    assert [(r["sku"], r["on_hand"], r["order_qty"]) for r in here.json()] == [
        ("SKU-1", 2, 18),
        ("SKU-2", 0, 6),
        ("SKU-3", 0, 4),
    ]
    assert here.json()[0]["location"] == "B-1"
    assert "within" in str(assert_problem(missing, 404)["detail"])
    assert_problem(unknown, 422)
    assert_problem(anonymous, 401)


async def test_low_stock_alert_is_published_by_ingest(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    first = batch(txn(K.RECEIPT, 10, to_location="A-1"))
    low = batch(txn(K.PICK, 8, from_location="A-1"))
    lower = batch(txn(K.PICK, 1, from_location="A-1"))
    back = batch(txn(K.RECEIPT, 20, to_location="A-1"))
    async with edge_client(mosquitto, ACKS, ALERTS) as (client, inbox):
        async with running_aggregator(agg_settings):
            await client.publish(TXN_TOPIC, first.model_dump_json(), qos=1)
            await wait_ack(inbox, {first.txns[0].id})
            engine = create_engine(agg_settings.database_url)
            try:
                await set_reorder(engine, "SKU-1", 5, 30)
            finally:
                await engine.dispose()
            await client.publish(TXN_TOPIC, low.model_dump_json(), qos=1)
            at, payload = await inbox.next(ALERTS, "a low-stock alert")
            raised = Alert.model_validate_json(payload)
        async with running_aggregator(agg_settings):  # restarted: not raised again
            for one in (lower, back):
                await client.publish(TXN_TOPIC, one.model_dump_json(), qos=1)
                await wait_ack(inbox, {one.txns[0].id})
            _, payload = await inbox.next(ALERTS, "the all-clear", start=at + 1)
            cleared = Alert.model_validate_json(payload)
    assert (raised.kind, raised.severity) == (AlertKind.LOW_STOCK, Severity.WARNING)
    assert raised.subject == {"qty": "2", "reorder_point": "5", "sku": "SKU-1", "state": "raised"}
    assert (cleared.kind, cleared.severity) == (AlertKind.LOW_STOCK, Severity.INFO)
    assert cleared.subject["state"] == "cleared"
    assert cleared.subject["qty"] == "21"
    assert len(inbox.on(ALERTS)) == 2


def at_places(posting: Any) -> list[tuple[str | None, str | None, int, bool]]:
    return [(low.sku, low.location, low.qty, low.raised) for low in posting.low_stock]


async def test_a_reorder_point_at_a_location_raises_and_clears_there(
    ledger: Ledger, engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    """A pick face (A-1) refilled from reserve (B-1): its own point counts its own balance."""
    await ledger.post(
        batch(txn(K.RECEIPT, 10, to_location="A-1"), txn(K.RECEIPT, 50, to_location="B-1"))
    )
    app = create_app(ApiState(engine, ledger))
    point = {"sku": "SKU-1", "location": "A-1", "reorder_point": 4, "max_qty": 12}
    async with (
        serving(app) as url,
        api_client(url, api_key(db_url, Role.ADMIN, "boss")) as admin,
        api_client(url, api_key(db_url, Role.VIEWER)) as viewer,
    ):
        assert (await admin.put("/reorder/points", json=point)).status_code == 204
        assert at_places(await ledger.post(batch(txn(K.PICK, 6, from_location="A-1")))) == []
        low = await ledger.post(batch(txn(K.PICK, 1, from_location="A-1")))
        assert at_places(low) == [("SKU-1", "A-1", 3, True)]
        again = Ledger(writer, site=SITE)  # restarted: the state is in the database
        assert at_places(await again.post(batch(txn(K.PICK, 1, from_location="A-1")))) == []

        listed = (await viewer.get("/reorder/points")).json()
        assert [(p["location"], p["on_hand"], p["raised"], p["max_qty"]) for p in listed] == [
            ("A-1", 2, True, 12)
        ]
        wanted = (await viewer.get("/reorder/suggestions", params={"within": "A-1"})).json()
        assert [(r["location"], r["scope"], r["on_hand"], r["order_qty"]) for r in wanted] == [
            ("A-1", "location", 2, 10)
        ]

        refill = txn(K.TRANSFER, 10, from_location="B-1", to_location="A-1")
        assert at_places(await again.post(batch(refill))) == [("SKU-1", "A-1", 12, False)]
        assert (await viewer.get("/reorder/suggestions")).json() == []

        gone = {"sku": "SKU-1", "location": "A-1"}
        assert (await admin.delete("/reorder/points", params=gone)).status_code == 204
        assert (await viewer.get("/reorder/points")).json() == []
        assert_problem(await admin.delete("/reorder/points", params=gone), 404)
    rows = await audit_after(engine, 0, 100)
    done = [(r.entry.action, r.entry.target, r.entry.actor) for r in rows if r.entry.status < 300]
    assert [d for d in done if d[0] != "create_key"] == [
        ("put_point", "SKU-1 at A-1", "boss"),
        ("remove_point", "SKU-1 at A-1", "boss"),
    ]


async def test_bad_reorder_points_are_problems_naming_the_field(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    await ledger.post(batch(txn(K.RECEIPT, 1, to_location="A-1")))
    app = create_app(ApiState(engine, ledger))
    good = {"sku": "SKU-1", "location": "A-1", "reorder_point": 4}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "sku": "NOPE"}, 404, "no item with sku 'NOPE'"),
        ({**good, "location": "Z-9"}, 404, "no location 'Z-9'"),
        ({**good, "location": "@customer"}, 422, "body.location"),
        ({**good, "max_qty": 3}, 422, "body.max_qty"),
        ({**good, "reorder_point": -1}, 422, "reorder_point"),
        ({**good, "reorder_point": "4"}, 422, "reorder_point"),
        ({**good, "colour": "red"}, 422, "colour"),
    ]
    async with (
        serving(app) as url,
        api_client(url, api_key(db_url, Role.ADMIN)) as admin,
        api_client(url, api_key(db_url, Role.OPERATOR)) as operator,
    ):
        for body, code, named in cases:
            problem = assert_problem(await admin.put("/reorder/points", json=body), code)
            assert named in str(problem), (body, problem)
        assert_problem(await operator.put("/reorder/points", json=good), 403)
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(reorder_points))).all() == []
