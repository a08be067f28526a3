"""What a new user meets first: the review queue listing, query parameters that are refused
rather than ignored, stock filters that say why they match nothing, and an honest /health.
create_app over a real database, served by uvicorn on a free port."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.database import create_engine
from aggregator.ledger import Ledger, reads
from aggregator.roles import Role
from simulators.demo import _Probe
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    api_client,
    api_key,
    audit_entry,
    batch,
    serving,
    txn,
)
from tests.integration.test_api_access import assert_problem

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
GTIN = "04006381333931"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def where_invalid(response: httpx.Response) -> list[str]:
    """The `location` of each invalid parameter a 422 problem names."""
    errors = assert_problem(response, 422)["errors"]
    assert isinstance(errors, list)
    return [e["location"] for e in errors]


@asynccontextmanager
async def api(
    ledger: Ledger, db_url: str, role: Role = Role.VIEWER, *, mqtt: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    key = api_key(db_url, role)
    state = ApiState(create_engine(db_url), ledger, mqtt_connected=lambda: mqtt)
    try:
        async with serving(create_app(state)) as url, api_client(url, key) as http:
            yield http
    finally:
        await state.engine.dispose()


async def test_the_review_queue_is_listed_by_id_a_page_at_a_time(
    db_url: str, ledger: Ledger
) -> None:
    unsure = [txn(K.RECEIPT, n, to_location="A-1", confidence=0.1) for n in (1, 2, 3)]
    posted = [txn(K.RECEIPT, 5, to_location="A-1"), txn(K.RECEIPT, 6, to_location="A-2")]
    dropped = txn(K.RECEIPT, 7, gtin=GTIN, sku=None, to_location="A-1", confidence=0.1)
    await ledger.post(batch(*unsure, *posted, dropped))
    await ledger.void(dropped.id, audit=audit_entry())
    pages: list[dict[str, Any]] = []
    async with api(ledger, db_url) as http:
        after: str | None = None
        while len(pages) < 3:
            params = {"status": "pending", "limit": "2"} | ({"after": after} if after else {})
            response = await http.get("/transactions", params=params)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            after = response.json()["next"]
            if after is None:
                break
        by_status = {
            wanted: [
                i["id"] for i in (await http.get(f"/transactions?status={wanted}")).json()["items"]
            ]
            for wanted in ("posted", "voided")
        }
        everything = (await http.get("/transactions")).json()["items"]
        bad_status = await http.get("/transactions", params={"status": "waiting"})
        bad_cursor = await http.get("/transactions", params={"after": "yesterday"})
    assert [len(p["items"]) for p in pages] == [2, 1]
    assert pages[-1]["next"] is None
    listed = [item for page in pages for item in page["items"]]
    assert [i["id"] for i in listed] == sorted(str(t.id) for t in unsure)  # by id
    first = next(i for i in listed if i["id"] == str(unsure[0].id))
    assert (
        first.items()
        >= {
            "edge": "edge1",
            "device": "dev1",
            "kind": "receipt",
            "status": "pending",
            "sku": "SKU-1",
            "gtin": None,
            "qty": 1,
            "to_location": "A-1",
            "confidence": 0.1,
            "committed_at": None,
        }.items()
    )
    assert first["review_reason"]
    assert by_status == {"posted": sorted(str(t.id) for t in posted), "voided": [str(dropped.id)]}
    assert [i["id"] for i in everything] == sorted(i["id"] for i in everything)
    assert len(everything) == 6
    assert where_invalid(bad_status) == ["query.status"]
    assert where_invalid(bad_cursor) == ["query.after"]


@sqlite_only
async def test_every_route_refuses_query_parameters_it_does_not_take(
    db_url: str, ledger: Ledger
) -> None:
    async with api(ledger, db_url, Role.ADMIN) as http:
        spec = (await http.get("/openapi.json")).json()
        gets = [p for p, ops in spec["paths"].items() if "get" in ops and "{" not in p]
        refused = {path: await http.get(path, params={"skus": "JUICE-1L"}) for path in gets}
        by_id = await http.get(f"/transactions/{uuid4()}", params={"verbose": "1"})
        twice = await http.get("/stock", params={"sk": "1", "gtim": "2"})
        known = await http.get("/transactions", params={"status": "pending", "limit": "5"})
    assert {"/stock", "/movements", "/transactions", "/dead-letters", "/audit"} <= set(gets)
    for path, response in refused.items():
        assert where_invalid(response) == ["query.skus"], path
        assert "unknown parameter" in response.json()["detail"], path
    stock_takes = refused["/stock"].json()["errors"][0]["message"]
    takes = "as_of, gtin, include_virtual, known_at, limit, location, lot, sku"
    assert takes in stock_takes, stock_takes
    movements_takes = refused["/movements"].json()["errors"][0]["message"]
    assert "load_id, occurred_before, occurred_since" in movements_takes, movements_takes
    assert where_invalid(by_id) == ["query.verbose"]
    assert where_invalid(twice) == ["query.sk", "query.gtim"]
    assert known.status_code == 200, known.text


async def test_stock_filters_that_name_nothing_say_so(db_url: str, ledger: Ledger) -> None:
    await ledger.post(
        batch(
            txn(K.RECEIPT, 3, sku=None, gtin=GTIN, to_location="B-1"),
            txn(K.RECEIPT, 2, sku="SKU-2", to_location="B-1"),
            txn(K.SHIPMENT, 2, sku="SKU-2", from_location="B-1"),
        )
    )
    async with api(ledger, db_url) as http:
        by_sku = await http.get("/stock", params={"sku": "JUICE-1L"})
        by_gtin = await http.get("/stock", params={"gtin": GTIN})
        other_gtin = await http.get("/stock", params={"gtin": "00000000000017"})
        nowhere = await http.get("/stock", params={"location": "NOWHERE"})
        sold_out = await http.get("/stock", params={"sku": "SKU-2"})
        other_lot = await http.get("/stock", params={"gtin": GTIN, "lot": "L9"})
        short_gtin = await http.get("/stock", params={"gtin": "4006381333931"})
    detail = str(assert_problem(by_sku, 404)["detail"])
    assert detail.startswith("query.sku: the ledger knows no item with sku 'JUICE-1L'"), detail
    assert "?gtin=" in detail, detail
    assert [(r["gtin"], r["location"], r["qty"]) for r in by_gtin.json()] == [(GTIN, "B-1", 3)]
    assert "query.gtin" in str(assert_problem(other_gtin, 404)["detail"])
    assert "query.location" in str(assert_problem(nowhere, 404)["detail"])
    assert (sold_out.status_code, sold_out.json()) == (200, [])  # known, no stock now
    assert (other_lot.status_code, other_lot.json()) == (200, [])
    assert where_invalid(short_gtin) == ["query.gtin"]


@sqlite_only
async def test_health_is_503_while_degraded_with_the_same_body(db_url: str, ledger: Ledger) -> None:
    async with api(ledger, db_url, mqtt=False) as http:
        degraded = await http.get("/health")
        demo_probe = _Probe(str(http.base_url), Path("/nonexistent"), key=None)
        demo_reads = await asyncio.to_thread(demo_probe.health)  # the demo's _mqtt_up
    async with api(ledger, db_url, mqtt=True) as http:
        ok = await http.get("/health")
        spec = (await http.get("/openapi.json")).json()
    down = {"status": "degraded", "database": True, "mqtt": False}
    assert degraded.status_code == 503
    assert degraded.json().items() >= down.items()
    assert demo_reads == degraded.json()
    assert ok.status_code == 200
    assert ok.json().items() >= {"status": "ok", "database": True, "mqtt": True}.items()
    assert "MQTT" in spec["paths"]["/health"]["get"]["responses"]["503"]["description"]


@sqlite_only
async def test_the_review_queue_is_read_through_its_index(engine: AsyncEngine) -> None:
    """Pending transactions are a few among millions posted: no scan of them all per page."""
    for status, after in (("pending", None), ("voided", uuid4())):
        query = reads.transactions_query(status, after, 100)
        async with engine.connect() as conn:
            plan = await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {_literal(query, conn)}"))
            steps = " / ".join(str(row[-1]) for row in plan)
        assert "USING INDEX ix_transactions_not_posted" in steps, steps


def _literal(query: sa.Select[Any], conn: AsyncConnection) -> str:
    return str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
