"""Who may call the API (keys, roles, revocation, open reads, CORS), and how it answers errors:
RFC 9457 problem details with a request id, bounded numbers. Over real HTTP."""

import logging
from uuid import UUID, uuid4

import httpx
import pytest

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.database import create_engine
from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.settings import AggregatorSettings, ApiSettings
from aggregator.writer import Writer
from simulators.ports import free_port
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    api_client,
    api_key,
    batch,
    running_aggregator,
    serving,
    txn,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
PROBLEM_JSON = "application/problem+json"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def _status(http: httpx.AsyncClient, txn_id: UUID) -> str:
    response = await http.get(f"/transactions/{txn_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_each_write_needs_a_key_whose_role_allows_it(
    agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    unsure = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.1)
    doubtful = txn(K.RECEIPT, 9, to_location="A-1", confidence=0.1)
    [posted] = (
        await ledger.post(batch(unsure, doubtful, txn(K.RECEIPT, 2, to_location="B")))
    ).movements
    url_db = agg_settings.database_url
    viewer, operator, approver = (api_key(url_db, r) for r in Role if r is not Role.ADMIN)
    approve, void = f"/transactions/{unsure.id}/approve", f"/transactions/{doubtful.id}/void"
    reverse = f"/movements/{posted.id}/reverse"
    async with running_aggregator(agg_settings) as url, api_client(url, viewer) as as_viewer:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            nobody = assert_problem(await anonymous.post(approve), 401)
            no_key = await anonymous.post(reverse)
        async with api_client(url, "swk_0123456789abcdef_" + "x" * 43) as forged:
            bad_key = await forged.post(void)
        async with api_client(url, operator) as as_operator:
            operator_approves = await as_operator.post(approve)
            operator_reverses = await as_operator.post(reverse)
            viewer_voids = await as_viewer.post(void)
            assert (await _status(as_viewer, doubtful.id)) == "pending"
            operator_voids = await as_operator.post(void)
        async with api_client(url, approver) as as_approver:
            approved = await as_approver.post(approve)
            reversed_ = await as_approver.post(reverse)
        statuses = [await _status(as_viewer, t.id) for t in (unsure, doubtful)]
    assert "API key" in str(nobody["detail"])
    assert no_key.headers["www-authenticate"] == 'Bearer realm="stockwire"'
    assert_problem(bad_key, 401)
    assert bad_key.headers["www-authenticate"] == 'Bearer realm="stockwire", error="invalid_token"'
    for refused in (viewer_voids, operator_approves, operator_reverses):
        assert_problem(refused, 403)
    assert "needs" in operator_approves.json()["detail"]
    assert (operator_voids.status_code, operator_voids.json()["status"]) == (200, "voided")
    assert (approved.status_code, approved.json()["status"]) == (200, "posted")
    assert (reversed_.status_code, reversed_.json()["reverses"]) == (201, posted.id)
    assert statuses == ["posted", "voided"]


@sqlite_only
async def test_reads_need_a_key_unless_open_reads(
    agg_settings: AggregatorSettings, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_aggregator(agg_settings) as url, httpx.AsyncClient(base_url=url) as http:
        closed = await http.get("/stock")
        health = await http.get("/health")
    open_settings = agg_settings.model_copy(
        update={"api": agg_settings.api.model_copy(update={"open_reads": True})}
    )
    with caplog.at_level(logging.WARNING, logger="aggregator.api.app"):
        async with running_aggregator(open_settings) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                opened = await http.get("/stock")
                write = await http.post(f"/transactions/{uuid4()}/void")
            async with api_client(url, "swk_not-a-key") as http:
                bad_key = await http.get("/stock")
    assert_problem(closed, 401)
    assert health.status_code == 200
    assert (opened.status_code, opened.json()) == (200, [])
    assert_problem(write, 401)
    assert_problem(bad_key, 401)
    assert any("open_reads" in r.getMessage() for r in caplog.records)


async def test_keys_made_through_the_api_work_until_revoked(
    agg_settings: AggregatorSettings,
) -> None:
    admin = api_key(agg_settings.database_url, Role.ADMIN, name="root")
    async with running_aggregator(agg_settings) as url, api_client(url, admin) as as_admin:
        made = await as_admin.post("/keys", json={"name": "dashboard", "role": "viewer"})
        invalid = await as_admin.post("/keys", json={"name": "bad name", "role": "boss"})
        key = made.json()
        async with api_client(url, key["key"]) as as_new:
            before = await as_new.get("/stock")
            not_admin = await as_new.get("/keys")
            revoked = await as_admin.delete(f"/keys/{key['id']}")
            after = await as_new.get("/stock")
        again = await as_admin.delete(f"/keys/{key['id']}")
        unknown = await as_admin.delete(f"/keys/{'0' * 16}")
        malformed = await as_admin.delete("/keys/XYZ")
        listed = (await as_admin.get("/keys")).json()
    assert made.status_code == 201, made.text
    assert (key["name"], key["role"], key["revoked_at"]) == ("dashboard", "viewer", None)
    assert key["key"].startswith(f"swk_{key['id']}_")
    body = assert_problem(invalid, 422)
    assert {e["location"] for e in body["errors"]} == {"body.name", "body.role"}  # type: ignore[attr-defined]
    assert before.status_code == 200
    assert_problem(not_admin, 403)
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert_problem(after, 401)
    assert "already revoked" in assert_problem(again, 409)["detail"]  # type: ignore[operator]
    assert_problem(unknown, 404)
    assert_problem(malformed, 422)
    by_name = {k["name"]: k for k in listed}
    assert set(by_name) == {"root", "dashboard"}
    assert by_name["dashboard"]["revoked_at"] is not None
    assert by_name["root"]["revoked_at"] is None
    assert all("key" not in k for k in listed), "a listing never shows a key"


@sqlite_only
async def test_cors_is_off_unless_configured(
    agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    pending = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.1)
    await ledger.post(batch(pending))
    viewer = api_key(agg_settings.database_url, Role.VIEWER)
    approve = f"/transactions/{pending.id}/approve"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    evil, ops = "http://evil.example", "https://ops.example"
    async with running_aggregator(agg_settings) as url, httpx.AsyncClient(base_url=url) as http:
        asked = await http.options(approve, headers={"Origin": evil, **preflight})
        # What a browser sends cross-origin without a preflight: no Authorization header.
        simple_headers = {"Origin": evil, "Content-Type": "text/plain"}
        simple = await http.post(approve, headers=simple_headers, content=b"approve=1")
        async with api_client(url, viewer) as as_viewer:
            status = await _status(as_viewer, pending.id)
    configured = agg_settings.model_copy(
        update={"api": agg_settings.api.model_copy(update={"cors_origins": [ops]})}
    )
    async with running_aggregator(configured) as url, httpx.AsyncClient(base_url=url) as http:
        allowed = await http.options(approve, headers={"Origin": ops, **preflight})
        other = await http.options(approve, headers={"Origin": evil, **preflight})
    assert "access-control-allow-origin" not in asked.headers
    assert_problem(simple, 401)
    assert "access-control-allow-origin" not in simple.headers
    assert status == "pending"
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ops
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


@sqlite_only
async def test_request_ids_are_echoed_when_plain_and_made_otherwise(
    agg_settings: AggregatorSettings,
) -> None:
    void = f"/transactions/{uuid4()}/void"
    async with running_aggregator(agg_settings) as url, httpx.AsyncClient(base_url=url) as http:
        given = await http.post(void, headers={"X-Request-ID": "ticket-42.retry_1"})
        odd = await http.post(void, headers={"X-Request-ID": "no spaces <or> markup"})
        long = await http.post(void, headers={"X-Request-ID": "x" * 65})
        read = await http.get("/health")
    assert assert_problem(given, 401)["request_id"] == "ticket-42.retry_1"
    made = {assert_problem(r, 401)["request_id"] for r in (odd, long)}
    assert all(isinstance(m, str) and len(m) == 32 for m in made), made
    assert len(made) == 2
    assert len(read.headers["x-request-id"]) == 32


async def test_numbers_out_of_range_are_422_not_500(agg_settings: AggregatorSettings) -> None:
    admin = api_key(agg_settings.database_url, Role.ADMIN)
    async with running_aggregator(agg_settings) as url, api_client(url, admin) as http:
        for path in ("/movements", "/dead-letters", "/rejected", "/audit"):
            for after in (2**63, -1):
                body = assert_problem(await http.get(path, params={"after": after}), 422)
                assert body["errors"] == [
                    {"location": "query.after", "message": body["errors"][0]["message"]}  # type: ignore[index]
                ]
            edge = await http.get(path, params={"after": 2**63 - 1})
            assert (edge.status_code, edge.json()["items"]) == (200, []), path
        for movement_id in (2**63, 0):
            assert_problem(await http.post(f"/movements/{movement_id}/reverse"), 422)
        assert_problem(await http.post(f"/movements/{2**63 - 1}/reverse"), 404)
        assert_problem(await http.get("/stock", params={"limit": 10**30}), 422)


@sqlite_only
async def test_unknown_routes_and_methods_are_problems_too(
    agg_settings: AggregatorSettings,
) -> None:
    viewer = api_key(agg_settings.database_url, Role.VIEWER)
    async with running_aggregator(agg_settings) as url, api_client(url, viewer) as http:
        assert_problem(await http.get("/nowhere"), 404)
        assert_problem(await http.put("/stock"), 405)
        assert_problem(await http.get(f"/transactions/{uuid4()}"), 404)
        assert_problem(await http.get("/transactions/not-a-uuid"), 422)


@sqlite_only
async def test_an_unexpected_failure_is_a_500_problem_without_a_trace(
    db_url: str, writer: Writer, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer thread is gone (as after a crash of it): the API must still answer cleanly."""
    engine = create_engine(db_url)
    operator = api_key(db_url, Role.OPERATOR)
    app = create_app(ApiState(engine, Ledger(writer, site=support.SITE)))
    writer.close()
    try:
        async with serving(app) as url, api_client(url, operator) as http:
            failed = await http.post(
                f"/transactions/{uuid4()}/void", headers={"X-Request-ID": "req-500"}
            )
    finally:
        await engine.dispose()
    body = assert_problem(failed, 500)
    assert body["request_id"] == "req-500"
    assert "Traceback" not in failed.text
    assert "shutdown" not in failed.text, "internal error text must stay in the log"
    assert any("req-500" in r.getMessage() and r.exc_info for r in caplog.records)


@sqlite_only
async def test_a_database_that_does_not_answer_is_a_503_problem(
    db_url: str, writer: Writer
) -> None:
    nothing_there = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    ledger = Ledger(writer, site=support.SITE)
    app = create_app(ApiState(nothing_there, ledger, settings=ApiSettings(open_reads=True)))
    try:
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            stock = await http.get("/stock")
            health = await http.get("/health")
    finally:
        await nothing_there.dispose()
    assert_problem(stock, 503)
    assert stock.headers["retry-after"] == "5"
    assert (health.status_code, health.json()["database"]) == (503, False)
