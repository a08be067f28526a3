"""EPCs in the ledger (where each tag is, no tag counted twice) and load ids, on SQLite and
PostgreSQL; the API over real HTTP, ledger events through a real mosquitto."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.ledger import Ledger
from aggregator.ledger.reads import item_totals
from aggregator.roles import Role
from aggregator.schema import epc_moves, epcs, movements, transactions
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.events import LedgerEvents
from stockwire.topics import EdgeChannel, SiteChannel, edge_filter, edge_topic, site_topic
from stockwire.txn import StockTransaction, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    audit_entry,
    batch,
    count_rows,
    edge_client,
    running_aggregator,
    serving,
    stock,
    txn,
    wait_ack,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
PROBLEM_JSON = "application/problem+json"


def tag(n: int) -> str:
    """An SGTIN-96-sized EPC (24 hex digits), upper case."""
    return f"3034{n:020X}"


def tagged(kind: TxnKind, tags: list[str], **fields: Any) -> StockTransaction:
    """A transaction of item-level tags: one unit per EPC."""
    return txn(kind, len(tags), epcs=tuple(tags), **fields)


@asynccontextmanager
async def api(engine: AsyncEngine, ledger: Ledger, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API around this test's ledger, with a viewer's key."""
    key = api_key(db_url, Role.VIEWER)
    async with serving(create_app(ApiState(engine, ledger))) as url, api_client(url, key) as http:
        yield http


async def where(http: httpx.AsyncClient, epc: str, **params: int) -> dict[str, Any]:
    response = await http.get(f"/epcs/{epc}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def status_of(engine: AsyncEngine, txn_id: UUID) -> tuple[str, str | None]:
    query = sa.select(transactions.c.status, transactions.c.review_reason).where(
        transactions.c.id == txn_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return row.status, row.review_reason


async def assert_zero_sum(engine: AsyncEngine) -> None:
    assert all(total == 0 for total in (await item_totals(engine)).values())


async def test_received_epcs_are_at_the_dock_and_shipped_ones_departed(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    load = uuid4()
    tags = [tag(1), tag(2), tag(3).lower()]
    received = tagged(K.RECEIPT, tags, to_location="DOCK-1", load_id=load)
    assert (await ledger.post_batch(batch(received)))[0].status is AckStatus.ACCEPTED
    async with api(engine, ledger, db_url) as http:
        now = await where(http, tag(3).lower())
        assert (now["epc"], now["location"], now["state"]) == (tag(3), "DOCK-1", "in_stock")
        assert (now["sku"], now["last_txn_id"], now["review_txn_id"]) == (
            "SKU-1",
            str(received.id),
            None,
        )
        [moved] = now["history"]
        assert (moved["from_location"], moved["to_location"], moved["kind"]) == (
            "@supplier",
            "DOCK-1",
            "receipt",
        )
        assert (moved["txn_id"], moved["load_id"]) == (str(received.id), str(load))

        shipped = tagged(K.SHIPMENT, [tag(3), tag(1)], from_location="DOCK-1")
        await ledger.post_batch(batch(shipped))
        now = await where(http, tag(3))
        assert (now["location"], now["state"], now["last_txn_id"]) == (
            "@customer",
            "departed",
            str(shipped.id),
        )
        assert [(m["kind"], m["to_location"]) for m in now["history"]] == [
            ("shipment", "@customer"),
            ("receipt", "DOCK-1"),
        ]
        assert len((await where(http, tag(3), limit=1))["history"]) == 1
        assert (await where(http, tag(2)))["state"] == "in_stock"

        unknown = await http.get(f"/epcs/{tag(99)}")
        assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM_JSON)
        assert tag(99) in unknown.json()["detail"]
        assert (await http.get("/epcs/not-hex")).status_code == 422
        assert (await http.get(f"/epcs/{tag(1)}", params={"limit": 0})).status_code == 422
        async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:
            assert (await anonymous.get(f"/epcs/{tag(1)}")).status_code == 401
    assert await stock(engine) == {
        ("SKU-1", "@supplier", ""): -3,
        ("SKU-1", "DOCK-1", ""): 1,
        ("SKU-1", "@customer", ""): 2,
    }


async def test_receiving_an_epc_in_stock_again_waits_in_review_then_approve(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    await ledger.post_batch(batch(tagged(K.RECEIPT, [tag(1), tag(2)], to_location="DOCK-1")))
    before = await stock(engine)
    again = tagged(K.RECEIPT, [tag(2), tag(3)], to_location="DOCK-2")
    posting = await ledger.post(batch(again))
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED]
    assert posting.movements == []
    status, reason = await status_of(engine, again.id)
    assert status == "pending"
    assert reason is not None
    assert (
        reason
        == f"EPC(s) already in stock (from @supplier they would count twice): {tag(2)} at DOCK-1"
    )
    assert await stock(engine) == before, "never a double count"
    async with api(engine, ledger, db_url) as http:
        held = await where(http, tag(2))
        assert (held["state"], held["location"], held["review_txn_id"]) == (
            "in_review",
            "DOCK-1",
            str(again.id),
        )
        assert (await http.get(f"/epcs/{tag(3)}")).status_code == 404  # never moved yet

        approved = await ledger.approve(again.id, audit=audit_entry())
        assert [(m.from_location, m.to_location, m.qty) for m in approved.movements] == [
            ("@supplier", "DOCK-2", 2)
        ]
        for epc in (tag(2), tag(3)):
            now = await where(http, epc)
            assert (now["state"], now["location"], now["review_txn_id"]) == (
                "in_stock",
                "DOCK-2",
                None,
            )
        assert len((await where(http, tag(2)))["history"]) == 2
    assert (await stock(engine))[("SKU-1", "DOCK-2", "")] == 2
    await assert_zero_sum(engine)


async def test_voiding_a_held_epc_releases_it_where_it_was(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    await ledger.post_batch(batch(tagged(K.RECEIPT, [tag(1)], to_location="A-1")))
    # from another physical place than where the ledger holds it
    wrong = tagged(K.TRANSFER, [tag(1)], from_location="B-1", to_location="C-1")
    await ledger.post_batch(batch(wrong))
    status, reason = await status_of(engine, wrong.id)
    assert status == "pending"
    assert reason is not None
    assert reason == f"EPC(s) in stock elsewhere than B-1: {tag(1)} at A-1"
    await ledger.void(wrong.id, audit=audit_entry())
    async with api(engine, ledger, db_url) as http:
        now = await where(http, tag(1))
    assert (now["state"], now["location"], now["review_txn_id"]) == ("in_stock", "A-1", None)
    assert len(now["history"]) == 1
    assert await count_rows(engine, epc_moves) == 1


async def test_qty_must_match_the_epcs(ledger: Ledger, engine: AsyncEngine) -> None:
    short = txn(K.RECEIPT, 3, epcs=(tag(1), tag(2)), to_location="A-1")
    twice = txn(K.RECEIPT, 2, epcs=(tag(5), tag(5).lower()), to_location="A-1")
    await ledger.post_batch(batch(short, twice))
    assert await status_of(engine, short.id) == (
        "pending",
        "qty 3 but 2 EPC(s): item-level tags count one unit each",
    )
    assert await status_of(engine, twice.id) == ("pending", "1 EPC(s) listed twice")
    assert await count_rows(engine, epcs) == 0


async def test_the_reason_names_a_few_epcs_and_counts_the_rest(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    many = [tag(n) for n in range(10)]
    await ledger.post_batch(batch(tagged(K.RETURN, many, to_location="A-1")))
    again = tagged(K.RETURN, many, to_location="A-2")
    await ledger.post_batch(batch(again))
    status, reason = await status_of(engine, again.id)
    assert status == "pending"
    assert reason is not None
    assert reason.startswith("EPC(s) already in stock (from @customer they would count twice):")
    assert reason.endswith(f"{tag(2)} at A-1 and 7 more")


async def test_a_duplicate_moves_no_epc_twice(ledger: Ledger, engine: AsyncEngine) -> None:
    received = tagged(K.RECEIPT, [tag(1), tag(2)], to_location="DOCK-1")
    await ledger.post_batch(batch(received))
    again = await ledger.post(batch(received))
    assert [r.status for r in again.results] == [AckStatus.DUPLICATE]
    assert again.movements == []
    assert await count_rows(engine, epc_moves) == 2
    assert await count_rows(engine, epcs) == 2


async def test_one_batch_sees_its_own_earlier_epc_moves(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    first = tagged(K.RECEIPT, [tag(1)], to_location="DOCK-1")
    twice = tagged(K.RECEIPT, [tag(1)], to_location="DOCK-2")
    gone = tagged(K.SHIPMENT, [tag(1)], from_location="DOCK-1")
    back = tagged(K.RETURN, [tag(1)], to_location="DOCK-1")
    results = await ledger.post_batch(batch(first, twice, gone, back))
    assert [r.status for r in results] == [AckStatus.ACCEPTED] * 4
    statuses = [(await status_of(engine, t.id))[0] for t in (first, twice, gone, back)]
    assert statuses == ["posted", "pending", "posted", "posted"]
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(epcs))).one()
    assert (row.state, row.txn_id, row.review_txn_id) == ("in_review", back.id, twice.id)


async def test_a_reversal_moves_the_epcs_back_and_counts_move_none(
    ledger: Ledger, engine: AsyncEngine, db_url: str
) -> None:
    posting = await ledger.post(batch(tagged(K.RECEIPT, [tag(1)], to_location="A-1")))
    await ledger.reverse_movement(posting.movements[0].id, audit=audit_entry())
    await ledger.post(batch(txn(K.COUNT, 1, epcs=(tag(2),), to_location="A-1")))
    async with api(engine, ledger, db_url) as http:
        now = await where(http, tag(1))
        assert (await http.get(f"/epcs/{tag(2)}")).status_code == 404
    assert (now["location"], now["state"]) == ("@supplier", "departed")
    assert [m["reverses"] for m in now["history"]] == [posting.movements[0].id, None]


async def test_two_thousand_tagged_txns_post_in_one_group_commit(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    received = [
        tagged(K.RECEIPT, [tag(3 * n + i) for i in range(3)], to_location=f"DOCK-{n % 4}")
        for n in range(2000)
    ]
    group = await ledger.post_many([batch(*received)])
    assert [r.status for r in group.results[0]] == [AckStatus.ACCEPTED] * 2000
    assert (await count_rows(engine, epc_moves), await count_rows(engine, epcs)) == (6000, 6000)
    again = [tagged(K.RECEIPT, [tag(3 * n)], to_location="DOCK-9") for n in range(2000)]
    shipped = [tagged(K.SHIPMENT, list(t.epcs), from_location=t.to_location) for t in received]
    await ledger.post_many([batch(*again), batch(*shipped)])
    async with engine.connect() as conn:
        pending = await conn.scalar(
            sa.select(sa.func.count()).where(transactions.c.status == "pending")
        )
        by_state = sa.select(epcs.c.state, sa.func.count()).group_by(epcs.c.state)
        states: dict[str, int] = dict((await conn.execute(by_state)).all())
    assert pending == 2000
    assert states == {"in_review": 2000, "departed": 4000}
    assert await count_rows(engine, movements) == 4000
    await assert_zero_sum(engine)


async def test_load_ids_reach_movements_the_api_and_ledger_events(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    load = uuid4()
    one_load = batch(
        tagged(K.RECEIPT, [tag(1), tag(2)], to_location="DOCK-1", load_id=load),
        tagged(K.RECEIPT, [tag(3)], sku="SKU-2", to_location="DOCK-1", load_id=load),
        txn(K.RECEIPT, 4, to_location="A-1"),
    )
    ledger_topic = site_topic(SITE, SiteChannel.LEDGER)
    key = api_key(agg_settings.database_url, Role.VIEWER)
    async with (
        running_aggregator(agg_settings) as url,
        edge_client(mosquitto, edge_filter(EdgeChannel.ACK, SITE), ledger_topic) as (client, inbox),
        api_client(url, key) as http,
    ):
        await client.publish(
            edge_topic(SITE, EDGE, EdgeChannel.TXN), one_load.model_dump_json(), qos=1
        )
        await wait_ack(inbox, {t.id for t in one_load.txns})
        _, payload = await inbox.next(ledger_topic, "ledger events")
        events = LedgerEvents.model_validate_json(payload)
        assert [m.load_id for m in events.movements] == [load, load, None]

        page = (await http.get("/movements", params={"load_id": str(load)})).json()
        assert [m["txn_id"] for m in page["items"]] == [str(t.id) for t in one_load.txns[:2]]
        assert {m["load_id"] for m in page["items"]} == {str(load)}
        shown = (await http.get(f"/transactions/{one_load.txns[0].id}")).json()
        assert shown["load_id"] == str(load)
        assert (await http.get(f"/transactions/{one_load.txns[2].id}")).json()["load_id"] is None
        assert (await http.get("/movements", params={"load_id": "nope"})).status_code == 422


async def test_replicas_receiving_the_same_new_epc_count_it_once(
    engine: AsyncEngine, db_url: str
) -> None:
    """Two writers race on one new EPC: one places it, the other's receipt waits in review."""
    writers = [Writer(db_url), Writer(db_url)]
    one, two = (Ledger(w, site=SITE) for w in writers)
    first, second = (tagged(K.RECEIPT, [tag(7)], to_location=f"DOCK-{n}") for n in (1, 2))
    try:
        await asyncio.gather(one.post_batch(batch(first)), two.post_batch(batch(second)))
    finally:
        for w in writers:
            w.close()
    statuses = sorted([(await status_of(engine, t.id))[0] for t in (first, second)])
    assert statuses == ["pending", "posted"]
    assert (await count_rows(engine, epc_moves), await count_rows(engine, movements)) == (1, 1)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(epcs))).one()
    assert row.state == "in_review"


async def test_epcs_may_follow_moves_from_elsewhere_when_told(
    writer: Writer, engine: AsyncEngine
) -> None:
    """Stock put away by barcode leaves its EPCs at the dock; a later tagged move follows it."""
    ledger = Ledger(writer, site=SITE, review_epcs_moved_elsewhere=False)
    await ledger.post_batch(batch(tagged(K.RECEIPT, [tag(1)], to_location="DOCK-1")))
    await ledger.post_batch(batch(txn(K.PUTAWAY, 1, from_location="DOCK-1", to_location="A-1")))
    shipped = tagged(K.SHIPMENT, [tag(1)], from_location="A-1")
    again = tagged(K.RECEIPT, [tag(1), tag(2)], to_location="DOCK-1")
    back = tagged(K.RETURN, [tag(1)], to_location="DOCK-1")
    await ledger.post_batch(batch(shipped, back, again))
    assert [(await status_of(engine, t.id))[0] for t in (shipped, back, again)] == [
        "posted",
        "posted",
        "pending",
    ]
    async with engine.connect() as conn:
        moved = (await conn.execute(sa.select(epc_moves.c.txn_id))).scalars().all()
    assert len(moved) == 3
