"""Master data over real HTTP on both databases: items with GTIN packs (a case scan posts 12
each), the location tree (subtree filters, moves, inherited negative-stock policy), and the
problems bad input gets. Writes need an admin key and are audited."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.ledger import Ledger
from aggregator.ledger.policy import Policy
from aggregator.ledger.reads import audit_after, rejected_after, transaction
from aggregator.roles import Role
from aggregator.schema import items
from aggregator.writer import Writer
from stockwire.ack import AckStatus
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
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

K = TxnKind
EACH = "04006381333931"
CASE = "14006381333938"
PALLET = "24006381333935"
SOAP = {
    "sku": "SOAP",
    "gtin": EACH,
    "unit_weight_g": 125.0,
    "tracking": "lot",
    "shelf_life_days": 720,
    "reorder_point": 24,
    "min_qty": 12,
    "max_qty": 240,
    "abc_class": "A",
    "packs": [{"gtin": CASE, "uom": "CS", "qty": 12}, {"gtin": PALLET, "uom": "PL", "qty": 480}],
}


@asynccontextmanager
async def admin(
    engine: AsyncEngine, db_url: str, ledger: Ledger, role: Role = Role.ADMIN
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ApiState(engine, ledger))
    async with serving(app) as url, api_client(url, api_key(db_url, role)) as http:
        yield http


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


async def test_an_item_with_packs_reads_back_and_its_case_scan_posts_base_units(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with admin(engine, db_url, ledger) as http:
        made = ok(await http.post("/items", json=SOAP), 201)
        assert made == {
            **{k: v for k, v in SOAP.items() if k != "packs"},
            "base_uom": "EA",
            "flagged": False,
            "packs": [
                {"gtin": EACH, "uom": "EA", "qty": 1},
                {"gtin": CASE, "uom": "CS", "qty": 12},
                {"gtin": PALLET, "uom": "PL", "qty": 480},
            ],
        }
        assert ok(await http.get("/items/SOAP")) == made
        # SOAP is lot-tracked: its transactions name a lot (aggregator.ledger.tracking).
        posting = await ledger.post(
            batch(
                txn(K.RECEIPT, 2, sku=None, gtin=CASE, uom="CS", to_location="A-1", lot="L1"),
                txn(K.RECEIPT, 1, sku=None, gtin=PALLET, uom="PL", to_location="A-1", lot="L1"),
                txn(K.RECEIPT, 3, sku="SOAP", uom="CS", to_location="A-1", lot="L1"),  # by uom
                txn(K.PICK, 5, sku=None, gtin=EACH, from_location="A-1", lot="L1"),
                txn(K.RECEIPT, 2, sku=None, gtin=CASE, uom="EA", to_location="A-1", lot="L1"),
                txn(K.RECEIPT, 1, sku="SOAP", uom="BOX", to_location="A-1", lot="L1"),
            )
        )
        stock = ok(await http.get("/stock", params={"sku": "SOAP"}))
        by_case = ok(await http.get("/stock", params={"gtin": CASE}))
    assert by_case == stock
    assert [r.status for r in posting.results[:4]] == [AckStatus.ACCEPTED] * 4
    assert [m.qty for m in posting.movements] == [24, 480, 36, 5]
    assert [(r.status, r.reason) for r in posting.results[4:]] == [
        (
            AckStatus.REJECTED,
            f"uom 'EA' does not match GTIN {CASE}: a pack of CS (12 EA) of item SOAP",
        ),
        (
            AckStatus.REJECTED,
            "item SOAP has no pack in uom 'BOX' (its base unit is EA);"
            " add the GTIN and its conversion through the API",
        ),
    ]
    assert stock == [
        {"sku": "SOAP", "gtin": EACH, "location": "A-1", "virtual": False, "lot": "L1", "qty": 535}
    ]
    assert len(await rejected_after(engine, 0, 10)) == 2


async def test_a_scanned_item_is_adopted_by_its_gtin_and_keeps_its_stock(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    await ledger.post(batch(txn(K.RECEIPT, 4, sku=None, gtin=EACH, to_location="A-1")))
    async with admin(engine, db_url, ledger) as http:
        scanned = ok(await http.get("/items"))["items"]
        assert [(i["sku"], i["gtin"], i["flagged"]) for i in scanned] == [(None, EACH, True)]
        made = ok(await http.post("/items", json=SOAP), 201)
        stock = ok(await http.get("/stock", params={"sku": "SOAP"}))
        changed = ok(await http.patch("/items/SOAP", json={"max_qty": 300, "abc_class": None}))
    assert made["flagged"] is False
    assert [line["qty"] for line in stock] == [4]
    assert (changed["max_qty"], changed["abc_class"], changed["min_qty"]) == (300, None, 12)


async def test_gtins_are_added_and_removed_and_every_write_is_audited(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with admin(engine, db_url, ledger) as http:
        ok(await http.post("/items", json={"sku": "A/B", "gtin": EACH}), 201)
        added = ok(
            await http.post("/items/A/B/gtins", json={"gtin": CASE, "uom": "CS", "qty": 6}), 201
        )
        assert [p["gtin"] for p in added["packs"]] == [EACH, CASE]
        ok(await http.delete(f"/items/A/B/gtins/{CASE}"), 204)
        assert [p["gtin"] for p in ok(await http.get("/items/A/B"))["packs"]] == [EACH]
        base = await http.delete(f"/items/A/B/gtins/{EACH}")
        assert_problem(base, 409)
    actions = [(r.entry.action, r.entry.status) for r in await audit_after(engine, 0, 100)]
    assert [a for a in actions if a[0] != "create_key"] == [
        ("create_item", 201),
        ("add_gtin", 201),
        ("remove_gtin", 204),
        ("remove_gtin", 409),
    ]


BAD_ITEMS = {
    "zero pack qty": (
        {"sku": "X", "packs": [{"gtin": CASE, "uom": "CS", "qty": 0}]},
        422,
        "body.packs.0.qty",
    ),
    "negative pack qty": (
        {"sku": "X", "packs": [{"gtin": CASE, "uom": "CS", "qty": -3}]},
        422,
        "body.packs.0.qty",
    ),
    "case without conversion": (
        {"sku": "X", "packs": [{"gtin": CASE, "uom": "CS"}]},
        422,
        "body.packs.0.qty",
    ),
    "string qty": (
        {"sku": "X", "packs": [{"gtin": CASE, "uom": "CS", "qty": "12"}]},
        422,
        "body.packs.0.qty",
    ),
    "gtin twice": (
        {"sku": "X", "gtin": CASE, "packs": [{"gtin": CASE, "uom": "CS", "qty": 2}]},
        422,
        "body.packs.0.gtin",
    ),
    "base unit pack of 12": (
        {"sku": "X", "packs": [{"gtin": CASE, "uom": "EA", "qty": 12}]},
        422,
        "body.packs.0.qty",
    ),
    "gtin of another item": (
        {"sku": "X", "packs": [{"gtin": EACH, "uom": "CS", "qty": 2}]},
        409,
        "body.packs.0.gtin",
    ),
    "sku taken": ({"sku": "SOAP"}, 409, "body.sku"),
    "min above max": ({"sku": "X", "min_qty": 5, "max_qty": 2}, 422, "body.min_qty"),
    "unknown field": ({"sku": "X", "colour": "red"}, 422, "body.colour"),
    "bad tracking": ({"sku": "X", "tracking": "batch"}, 422, "body.tracking"),
}


async def test_bad_items_get_a_problem_naming_the_field(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    async with admin(engine, db_url, Ledger(writer, site=SITE)) as http:
        ok(await http.post("/items", json={"sku": "SOAP", "gtin": EACH}), 201)
        for case, (body, status, field) in BAD_ITEMS.items():
            problem = assert_problem(await http.post("/items", json=body), status)
            assert field in str(problem["detail"]), case
        malformed = await http.post(
            "/items", content=b'{"sku": ', headers={"content-type": "application/json"}
        )
        assert malformed.status_code in (400, 422)
        assert_problem(malformed, malformed.status_code)
        assert_problem(await http.get("/items/NOPE"), 404)
        assert_problem(
            await http.post("/items/NOPE/gtins", json={"gtin": CASE, "uom": "CS", "qty": 2}), 404
        )
        mismatch = await http.post("/items/SOAP/gtins", json={"gtin": CASE, "uom": "CS", "qty": 12})
        ok(mismatch, 201)
        other = await http.post("/items/SOAP/gtins", json={"gtin": PALLET, "uom": "CS", "qty": 24})
        assert "body.qty" in str(assert_problem(other, 422)["detail"])
        assert ok(await http.get("/items"))["items"][0]["sku"] == "SOAP"


async def test_writes_need_an_admin_key(engine: AsyncEngine, db_url: str, writer: Writer) -> None:
    async with admin(engine, db_url, Ledger(writer, site=SITE), Role.APPROVER) as http:
        assert_problem(await http.post("/items", json={"sku": "X"}), 403)
        assert_problem(await http.post("/locations", json={"code": "Z"}), 403)
        ok(await http.get("/items"))
        ok(await http.get("/locations"))


async def _tree(http: httpx.AsyncClient) -> None:
    for body in (
        {"code": "WH1", "kind": "site"},
        {"code": "Z-A", "parent": "WH1", "kind": "zone", "negative_stock": "forbid"},
        {"code": "A-01", "parent": "Z-A", "kind": "aisle"},
        {"code": "A-01-01", "parent": "A-01", "kind": "bin"},
        {"code": "A-01-02", "parent": "A-01", "kind": "bin", "negative_stock": "allow"},
        {"code": "DOCK-1", "parent": "WH1", "kind": "dock"},
    ):
        ok(await http.post("/locations", json=body), 201)


async def test_a_location_tree_filters_stock_and_movements_by_subtree(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with admin(engine, db_url, ledger) as http:
        await _tree(http)
        await ledger.post(
            batch(
                txn(K.RECEIPT, 5, to_location="DOCK-1"),
                txn(K.PUTAWAY, 3, from_location="DOCK-1", to_location="A-01-01"),
                txn(K.PUTAWAY, 2, from_location="DOCK-1", to_location="A-01-02"),
                txn(K.RECEIPT, 7, to_location="ELSEWHERE"),
            )
        )
        zone = ok(await http.get("/stock", params={"within": "Z-A"}))
        site = ok(await http.get("/stock", params={"within": "WH1"}))
        moves = ok(await http.get("/movements", params={"within": "A-01"}))["items"]
        tree = ok(await http.get("/locations", params={"within": "Z-A"}))["items"]
        assert_problem(await http.get("/stock", params={"within": "NOPE"}), 404)
        assert_problem(await http.get("/movements", params={"within": "NOPE"}), 404)
    assert {(r["location"], r["qty"]) for r in zone} == {("A-01-01", 3), ("A-01-02", 2)}
    assert sum(r["qty"] for r in site) == 5
    assert [(m["from_location"], m["to_location"]) for m in moves] == [
        ("DOCK-1", "A-01-01"),
        ("DOCK-1", "A-01-02"),
    ]
    assert [(t["code"], t["parent"], t["effective_negative_stock"]) for t in tree] == [
        ("Z-A", "WH1", "forbid"),
        ("A-01", "Z-A", "forbid"),
        ("A-01-01", "A-01", "forbid"),
        ("A-01-02", "A-01", "allow"),
    ]


async def test_moving_a_node_moves_its_subtree_and_its_policy_follows(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with admin(engine, db_url, ledger) as http:
        await _tree(http)
        await ledger.post(batch(txn(K.RECEIPT, 1, to_location="A-01-01")))
        moved = ok(await http.patch("/locations/A-01", json={"parent": "WH1"}))
        assert moved["effective_negative_stock"] == "allow"
        under_zone = ok(await http.get("/stock", params={"within": "Z-A"}))
        under_site = ok(await http.get("/stock", params={"within": "WH1"}))
        # Now allowed (no forbid above A-01-01 any more): the shipment posts.
        posting = await ledger.post(batch(txn(K.SHIPMENT, 3, from_location="A-01-01")))
        cycle = await http.patch("/locations/WH1", json={"parent": "A-01-01"})
        assert "body.parent" in str(assert_problem(cycle, 422)["detail"])
        back = ok(await http.patch("/locations/A-01", json={"parent": "Z-A"}))
        refused = await ledger.post(batch(txn(K.SHIPMENT, 1, from_location="A-01-01")))
        virtual = await http.patch("/locations/@loss", json={"parent": "WH1"})
        assert_problem(virtual, 409)
        unknown = await http.post("/locations", json={"code": "B-1", "parent": "NOPE"})
        assert "body.parent" in str(assert_problem(unknown, 422)["detail"])
        assert_problem(await http.post("/locations", json={"code": "@nope"}), 422)
        assert_problem(await http.post("/locations", json={"code": "WH1"}), 409)
        assert_problem(await http.patch("/locations/NOPE", json={"kind": "bin"}), 404)
    assert under_zone == []
    assert [r["qty"] for r in under_site] == [1]
    assert posting.results[0].status is AckStatus.ACCEPTED
    assert back["effective_negative_stock"] == "forbid"
    assert refused.results[0].status is AckStatus.REJECTED


async def test_unknown_items_wait_in_review_when_the_site_says_so_and_post_once_approved(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=Policy(unknown_items="review"))
    new = txn(K.RECEIPT, 2, sku="NEW-1", to_location="A-1")
    posting = await ledger.post(
        batch(new, txn(K.RECEIPT, 1, sku=None, gtin=CASE, to_location="A-1"))
    )
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED] * 2
    assert posting.movements == []
    assert await support.count_rows(engine, items) == 0
    row = await transaction(engine, new.id)
    assert row is not None
    assert row.txn.status == "pending"
    assert row.txn.review_reason == (
        "unknown item (sku NEW-1): the site reviews items first seen (unknown_items = review)"
    )
    approved = await ledger.approve(new.id, audit=audit_entry("approve"))
    assert [m.qty for m in approved.movements] == [2]
    assert (await support.stock(engine))[("NEW-1", "A-1", "")] == 2
