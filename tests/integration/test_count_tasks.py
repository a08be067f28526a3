"""Cycle-count tasks over real HTTP on SQLite and PostgreSQL: the book of a subtree frozen at
the start, counted lines that post or wait for another person's approval, scanner counts that
fill lines, closing, and GET /counts/due by ABC class. Every write is audited."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.ledger import Ledger
from aggregator.ledger.bounds import Bounds
from aggregator.ledger.count_tasks import CountRules
from aggregator.ledger.policy import Policy
from aggregator.ledger.reads import audit_after
from aggregator.roles import Role
from aggregator.schema import counts, items
from aggregator.writer import Writer
from stockwire.ack import AckStatus
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
    api_client,
    api_key,
    batch,
    serving,
    stock,
    txn,
)
from tests.integration.test_api_access import assert_problem

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer

K = TxnKind
RULES = CountRules(approval_units=2, approval_percent=None)
POLICY = Policy(count_rules=RULES)  # the ledger's: scanner counts meet the same threshold


@asynccontextmanager
async def clients(
    engine: AsyncEngine, db_url: str, ledger: Ledger
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """An admin (to build the tree), an operator (counts), an approver (another person)."""
    app = create_app(ApiState(engine, ledger, count_rules=RULES))
    async with serving(app) as url:
        keys = {
            "admin": api_key(db_url, Role.ADMIN, "boss"),
            "counter": api_key(db_url, Role.OPERATOR, "counter"),
            "checker": api_key(db_url, Role.APPROVER, "checker"),
            "viewer": api_key(db_url, Role.VIEWER, "viewer"),
        }
        async with (
            api_client(url, keys["admin"]) as admin,
            api_client(url, keys["counter"]) as counter,
            api_client(url, keys["checker"]) as checker,
            api_client(url, keys["viewer"]) as viewer,
        ):
            yield {"admin": admin, "counter": counter, "checker": checker, "viewer": viewer}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def tree(http: httpx.AsyncClient) -> None:
    for code, parent in (("Z1", None), ("Z1-A", "Z1"), ("Z1-B", "Z1"), ("Z2", None)):
        ok(await http.post("/locations", json={"code": code, "parent": parent}), 201)


def lines(task: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (ln["sku"], ln["location"], ln["book"], ln["counted"], ln["variance"], ln["state"])
        for ln in task["lines"]
    ]


async def test_a_task_counts_a_subtree_with_approval_by_another_person(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with clients(engine, db_url, ledger) as http:
        await tree(http["admin"])
        await ledger.post(
            batch(
                txn(K.RECEIPT, 10, to_location="Z1-A"),
                txn(K.RECEIPT, 4, to_location="Z1-B", sku="SKU-2"),
                txn(K.RECEIPT, 7, to_location="Z2"),  # outside the subtree
                txn(K.RECEIPT, 1, to_location="Z2", sku="SKU-3"),
            )
        )
        task = ok(await http["counter"].post("/counts/tasks", json={"location": "Z1"}), 201)
        assert (task["location"], task["state"], task["started_by"]) == ("Z1", "open", "counter")
        assert lines(task) == [
            ("SKU-1", "Z1-A", 10, None, None, "open"),
            ("SKU-2", "Z1-B", 4, None, None, "open"),
        ]
        path = f"/counts/tasks/{task['id']}"
        small = {"sku": "SKU-1", "location": "Z1-A", "counted": 9}  # -1: posts now
        big = {"sku": "SKU-2", "location": "Z1-B", "counted": 0}  # -4: waits
        ok(await http["counter"].post(f"{path}/lines", json=small))
        task = ok(await http["counter"].post(f"{path}/lines", json=big))
        assert lines(task) == [
            ("SKU-1", "Z1-A", 10, 9, -1, "posted"),
            ("SKU-2", "Z1-B", 4, 0, -4, "review"),
        ]
        have = await stock(engine)
        assert (have[("SKU-1", "Z1-A", "")], have[("SKU-2", "Z1-B", "")]) == (9, 4)
        waiting = task["lines"][1]["id"]
        assert_problem(await http["counter"].post(f"{path}/lines/{waiting}/approve"), 403)
        assert_problem(await http["counter"].post(f"{path}/close"), 409)  # one waits
        own = {"sku": "SKU-3", "location": "Z1-A", "counted": 50}  # not in the book; waits
        task = ok(await http["checker"].post(f"{path}/lines", json=own))
        [mine] = [ln["id"] for ln in task["lines"] if ln["sku"] == "SKU-3"]
        refused = await http["checker"].post(f"{path}/lines/{mine}/approve")
        assert "own count" in str(assert_problem(refused, 409)["detail"])
        ok(await http["admin"].post(f"{path}/lines/{mine}/approve"))
        task = ok(await http["checker"].post(f"{path}/lines/{waiting}/approve"))
        [approved] = [ln for ln in task["lines"] if ln["id"] == waiting]
        assert approved["state"] == "posted"
        assert (approved["approved_by"], approved["counted_by"]) == ("checker", "counter")
        assert ("SKU-2", "Z1-B", "") not in await stock(engine)
        assert ("SKU-2", "@loss", "") in await stock(engine)
        again = await http["counter"].post(f"{path}/lines", json=small)
        assert_problem(again, 409)  # counted already
        closed = ok(await http["counter"].post(f"{path}/close"))
        assert (closed["state"], closed["closed_by"]) == ("closed", "counter")
        assert_problem(await http["counter"].post(f"{path}/lines", json=big), 409)
        assert ok(await http["viewer"].get(path)) == closed
        assert_problem(await http["viewer"].post("/counts/tasks", json={"location": "Z1"}), 403)
    rows = await audit_after(engine, 0, 100)
    done = [(r.entry.action, r.entry.actor) for r in rows if r.entry.status < 300]
    assert done.count(("start_task", "counter")) == 1, done
    assert done.count(("count_line", "counter")) == 2, done
    assert done.count(("count_line", "checker")) == 1, done
    assert done.count(("approve_line", "checker")) == 1, done
    assert done.count(("approve_line", "boss")) == 1, done
    assert done.count(("close_task", "counter")) == 1, done


async def test_a_line_outside_the_book_and_bad_input(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)
    async with clients(engine, db_url, ledger) as http:
        await tree(http["admin"])
        await ledger.post(batch(txn(K.RECEIPT, 1, to_location="Z1-A", sku="SKU-9")))
        body = {"location": "Z1", "sku": "SKU-9"}
        task = ok(await http["counter"].post("/counts/tasks", json=body), 201)
        path = f"/counts/tasks/{task['id']}/lines"
        found = {"sku": "SKU-9", "location": "Z1-B", "counted": 2}  # not in the book: book 0
        task = ok(await http["counter"].post(path, json=found))
        assert ("SKU-9", "Z1-B", 0, 2, 2, "posted") in lines(task)
        outside = {"sku": "SKU-9", "location": "Z2", "counted": 1}
        assert "location" in str(
            assert_problem(await http["counter"].post(path, json=outside), 422)
        )
        other = {"sku": "SKU-1", "location": "Z1-A", "counted": 1}
        assert_problem(await http["counter"].post(path, json=other), 422)
        assert_problem(await http["counter"].post("/counts/tasks", json={"location": "NOPE"}), 422)
        assert_problem(await http["viewer"].get("/counts/tasks/999"), 404)
        assert_problem(await http["viewer"].get("/counts/due", params={"bogus": "1"}), 422)


async def test_scanner_counts_fill_the_lines_of_an_open_task(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=POLICY)
    async with clients(engine, db_url, ledger) as http:
        await ledger.post(batch(txn(K.RECEIPT, 5, to_location="A-1")))
        task = ok(await http["counter"].post("/counts/tasks", json={"location": "A-1"}), 201)
        scanned = txn(K.COUNT, 3, to_location="A-1")
        await ledger.post(batch(scanned))
        task = ok(await http["viewer"].get(f"/counts/tasks/{task['id']}"))
    [line] = task["lines"]
    assert (line["counted"], line["state"], line["txn_id"]) == (3, "posted", str(scanned.id))
    assert line["counted_by"] == f"{scanned.edge}/{scanned.device}"
    assert (await stock(engine))[("SKU-1", "A-1", "")] == 3


async def test_counts_due_by_abc_class(engine: AsyncEngine, db_url: str, writer: Writer) -> None:
    now = datetime.now(UTC)
    bounds = Bounds(future_skew=timedelta(days=1), age_max=timedelta(days=400), qty_max=1000)
    ledger = Ledger(writer, site=SITE, bounds=bounds)
    long_ago = now - timedelta(days=40)
    await ledger.post(
        batch(
            txn(K.RECEIPT, 5, to_location="A-1", sku="AX"),
            txn(K.RECEIPT, 5, to_location="A-2", sku="AX"),
            txn(K.RECEIPT, 5, to_location="A-1", sku="BX"),
            txn(K.RECEIPT, 5, to_location="A-1", sku="NONE"),
            txn(K.COUNT, 5, to_location="A-1", sku="AX", occurred_at=long_ago),
            txn(K.COUNT, 5, to_location="A-1", sku="BX", occurred_at=long_ago),
        )
    )
    async with engine.begin() as conn:
        for sku, abc in (("AX", "A"), ("BX", "B")):
            await conn.execute(sa.update(items).where(items.c.sku == sku).values(abc_class=abc))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(counts))).scalar() == 2
    async with clients(engine, db_url, ledger) as http:
        due = ok(await http["viewer"].get("/counts/due"))
        there = ok(await http["viewer"].get("/counts/due", params={"within": "A-2"}))
        assert_problem(await http["viewer"].get("/counts/due", params={"within": "NOPE"}), 404)
    got = [(d["sku"], d["location"], d["abc_class"], d["due_at"] is None) for d in due]
    # AX at A-2 was never counted (due now); AX at A-1 is 40 days old (A: 30); BX is not due.
    assert got == [("AX", "A-2", "A", True), ("AX", "A-1", "A", False)]
    assert [d["location"] for d in there] == ["A-2"]


async def test_scanner_counts_over_the_threshold_wait_for_the_lines_approval(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=POLICY)
    async with clients(engine, db_url, ledger) as http:
        await ledger.post(
            batch(
                txn(K.RECEIPT, 10, to_location="A-1"),
                txn(K.RECEIPT, 10, to_location="A-2"),
                txn(K.RECEIPT, 10, to_location="A-3"),
            )
        )
        made = [
            ok(await http["counter"].post("/counts/tasks", json={"location": c}), 201)
            for c in ("A-1", "A-2", "A-3")
        ]
        paths = [f"/counts/tasks/{t['id']}" for t in made]
        scans = [txn(K.COUNT, 4, to_location=c) for c in ("A-1", "A-2", "A-3")]
        outside = txn(K.COUNT, 1, to_location="B-1")  # no task there: posts as ever
        posting = await ledger.post(batch(*scans, outside))
        assert [r.status for r in posting.results] == [AckStatus.ACCEPTED] * 4
        assert all(r.reason is None for r in posting.results)  # as other review outcomes
        assert {m.txn_id for m in posting.movements} == {outside.id}
        have = await stock(engine)
        assert [have[("SKU-1", c, "")] for c in ("A-1", "A-2", "A-3")] == [10, 10, 10]
        for path, scan in zip(paths, scans, strict=True):
            [line] = ok(await http["viewer"].get(path))["lines"]
            assert (line["counted"], line["variance"], line["state"]) == (4, -6, "review")
            assert line["counted_by"] == f"{scan.edge}/{scan.device}"
            assert line["txn_id"] == str(scan.id)
            held = ok(await http["viewer"].get(f"/transactions/{scan.id}"))
            assert held["status"] == "pending"
            assert f"line {line['id']}" in held["review_reason"]
            assert "approval_units 2" in held["review_reason"]
        assert_problem(await http["counter"].post(f"{paths[0]}/close"), 409)

        # 1: approving the line posts the scanner count, once, as of its event time
        [line] = ok(await http["viewer"].get(paths[0]))["lines"]
        task = ok(await http["checker"].post(f"{paths[0]}/lines/{line['id']}/approve"))
        [line] = task["lines"]
        assert (line["state"], line["approved_by"], line["counted"]) == ("posted", "checker", 4)
        assert ok(await http["viewer"].get(f"/transactions/{scans[0].id}"))["status"] == "posted"
        assert_problem(await http["checker"].post(f"{paths[0]}/lines/{line['id']}/approve"), 409)
        assert_problem(await http["checker"].post(f"/transactions/{scans[0].id}/approve"), 409)
        assert (await stock(engine))[("SKU-1", "A-1", "")] == 4
        async with engine.connect() as conn:
            found = (
                await conn.execute(sa.select(counts).where(counts.c.txn_id == scans[0].id))
            ).all()
        assert [(r.book, r.counted, r.variance) for r in found] == [(10, 4, -6)]
        ok(await http["counter"].post(f"{paths[0]}/close"))

        # 2: voiding the pending count uncounts its line
        ok(await http["counter"].post(f"/transactions/{scans[1].id}/void"))
        [line] = ok(await http["viewer"].get(paths[1]))["lines"]
        assert (line["counted"], line["state"], line["txn_id"]) == (None, "open", None)
        ok(await http["counter"].post(f"{paths[1]}/close"))

        # 3: a recount of the line voids the pending count and takes its place
        recount = {"sku": "SKU-1", "location": "A-3", "counted": 9}
        task = ok(await http["counter"].post(f"{paths[2]}/lines", json=recount))
        [line] = task["lines"]
        assert (line["counted"], line["state"], line["counted_by"]) == (9, "posted", "counter")
        assert ok(await http["viewer"].get(f"/transactions/{scans[2].id}"))["status"] == "voided"
        have = await stock(engine)
        assert [have[("SKU-1", c, "")] for c in ("A-1", "A-2", "A-3")] == [4, 10, 9]


async def test_a_scanner_recount_at_a_waiting_line_takes_the_waiting_counts_place(
    engine: AsyncEngine, db_url: str, writer: Writer
) -> None:
    """Recounting is what a counter does after a big variance: the recount fills the line (or
    waits there itself, over the threshold) and the count it waited with is voided, saying so."""
    ledger = Ledger(writer, site=SITE, policy=POLICY)
    places = ("A-1", "A-2", "A-3")
    async with clients(engine, db_url, ledger) as http:
        await ledger.post(batch(*(txn(K.RECEIPT, 10, to_location=c) for c in places)))
        made = [
            ok(await http["counter"].post("/counts/tasks", json={"location": c}), 201)
            for c in places
        ]
        paths = [f"/counts/tasks/{t['id']}" for t in made]
        first = [txn(K.COUNT, 4, to_location=c) for c in places[:2]]
        await ledger.post(batch(*first))  # both over the threshold: they wait
        by_hand = {"sku": "SKU-1", "location": "A-3", "counted": 4}
        ok(await http["counter"].post(f"{paths[2]}/lines", json=by_hand))  # waits too

        recounts = [
            txn(K.COUNT, n, to_location=c) for n, c in ((9, "A-1"), (3, "A-2"), (10, "A-3"))
        ]
        posting = await ledger.post(batch(*recounts))
        assert [r.status for r in posting.results] == [AckStatus.ACCEPTED] * 3
        assert [(m.to_location, m.qty) for m in posting.movements] == [("@loss", 1)]

        states = [ok(await http["viewer"].get(p))["lines"] for p in paths]
        got = [(ln["counted"], ln["state"], ln["txn_id"]) for [ln] in states]
        assert got == [
            (9, "posted", str(recounts[0].id)),  # within the threshold: posted
            (3, "review", str(recounts[1].id)),  # over it: the recount waits in its place
            (10, "posted", str(recounts[2].id)),  # the count by hand that waited is replaced
        ]
        for old, new in zip(first, recounts, strict=False):
            voided = ok(await http["viewer"].get(f"/transactions/{old.id}"))
            assert voided["status"] == "voided"
            assert voided["review_reason"].endswith(f"superseded by the recount {new.id}")
        assert ok(await http["viewer"].get(f"/transactions/{recounts[1].id}"))["status"] == (
            "pending"
        )

        line_id = states[1][0]["id"]
        task = ok(await http["checker"].post(f"{paths[1]}/lines/{line_id}/approve"))
        assert [(ln["counted"], ln["state"]) for ln in task["lines"]] == [(3, "posted")]
        have = await stock(engine)
        assert [have[("SKU-1", c, "")] for c in places] == [9, 3, 10]
