"""The audit log: every write attempt, in the ledger database, append-only, and a decision's
row committed with the decision itself."""

from dataclasses import replace
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import record
from aggregator.database import create_sync_engine, writing
from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.schema import audit_log, movements, transactions
from aggregator.settings import AggregatorSettings
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    api_client,
    api_key,
    audit_entry,
    batch,
    count_rows,
    running_aggregator,
    txn,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
Row = tuple[Any, ...]


def _what(item: dict[str, Any]) -> Row:
    return (item["actor"], item["role"], item["action"], item["method"], item["status"])


async def test_every_write_attempt_is_audited(
    agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    pending = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.1)
    await ledger.post(batch(pending))
    db = agg_settings.database_url
    admin, viewer = api_key(db, Role.ADMIN, "root"), api_key(db, Role.VIEWER, "wall")
    approver = api_key(db, Role.APPROVER, "alice")
    approve = f"/transactions/{pending.id}/approve"
    async with running_aggregator(agg_settings) as url:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            await anonymous.post(approve, headers={"X-Request-ID": "anon-1"})
        async with api_client(url, viewer) as as_viewer:
            await as_viewer.post(approve)
            await as_viewer.get("/stock")  # a read: not audited
            refused_audit = await as_viewer.get("/audit")
        async with api_client(url, approver) as as_alice:
            approved = await as_alice.post(approve, headers={"X-Request-ID": "alice-1"})
            await as_alice.post(approve)
            await as_alice.post("/movements/999/reverse")
            await as_alice.post("/movements/abc/reverse")
            await as_alice.post("/nowhere")
        async with api_client(url, admin) as as_admin:
            first = (await as_admin.get("/audit", params={"limit": 3})).json()
            rest = (await as_admin.get("/audit", params={"after": first["next"]})).json()
    assert refused_audit.status_code == 403
    items = first["items"] + rest["items"]
    assert [_what(i) for i in items] == [
        ("test", None, "create_key", "CLI", 201),  # the three keys this test made
        ("test", None, "create_key", "CLI", 201),
        ("test", None, "create_key", "CLI", 201),
        ("anonymous", None, "approve", "POST", 401),
        ("wall", "viewer", "approve", "POST", 403),
        ("alice", "approver", "approve", "POST", 200),
        ("alice", "approver", "approve", "POST", 409),
        ("alice", "approver", "reverse", "POST", 404),
        ("alice", "approver", "reverse", "POST", 422),
        ("alice", "approver", "unknown", "POST", 404),
    ]
    assert rest["next"] is None
    assert [i["id"] for i in items] == sorted({i["id"] for i in items})
    assert [i["target"] for i in items[3:9]] == [str(pending.id)] * 4 + ["999", "abc"]
    assert [i["path"] for i in items[3:]][-1] == "/nowhere"
    anonymous_row, _, alice_row = items[3:6]
    assert (anonymous_row["request_id"], alice_row["request_id"]) == ("anon-1", "alice-1")
    assert alice_row["request_id"] == approved.headers["x-request-id"]
    assert alice_row["key_id"] == approver.split("_")[1]
    assert all(i["client"] == "127.0.0.1" for i in items[3:])
    assert all(i["at"] for i in items)


async def test_a_decision_and_its_audit_row_commit_together(
    ledger: Ledger, engine: AsyncEngine
) -> None:
    """A decision whose audit row cannot be written does not happen, and the other way round."""
    unsure = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.1)
    posting = await ledger.post(batch(unsure, txn(K.RECEIPT, 2, to_location="B-1")))
    broken = replace(audit_entry(), request_id=None)  # type: ignore[arg-type]
    with pytest.raises(sa.exc.IntegrityError):
        await ledger.approve(unsure.id, audit=broken)
    with pytest.raises(sa.exc.IntegrityError):
        await ledger.reverse_movement(posting.movements[0].id, audit=broken)
    with pytest.raises(sa.exc.IntegrityError):
        await ledger.void(unsure.id, audit=broken)
    assert await count_rows(engine, movements) == 1
    assert await count_rows(engine, audit_log) == 0
    async with engine.connect() as conn:
        status = sa.select(transactions.c.status).where(transactions.c.id == unsure.id)
        assert (await conn.execute(status)).scalar_one() == "pending"

    await ledger.approve(unsure.id, audit=audit_entry("approve"))
    await ledger.reverse_movement(posting.movements[0].id, audit=audit_entry("reverse"))
    async with engine.connect() as conn:
        actions = (await conn.execute(sa.select(audit_log.c.action))).scalars().all()
    assert actions == ["approve", "reverse"]
    assert await count_rows(engine, movements) == 3


async def test_the_audit_log_refuses_update_and_delete(db_url: str, engine: AsyncEngine) -> None:
    sync = create_sync_engine(db_url, poolclass=sa.NullPool)
    try:
        with writing(sync) as conn:
            record(conn, audit_entry("kept"))
        tampering: list[sa.Executable] = [
            sa.update(audit_log).values(actor="someone else"),
            sa.delete(audit_log),
        ]
        if sync.dialect.name == "postgresql":
            tampering.append(sa.text("TRUNCATE audit_log"))
        for statement in tampering:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), writing(sync) as conn:
                conn.execute(statement)
    finally:
        sync.dispose()
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit_log.c.actor, audit_log.c.action))).all()
    assert [tuple(r) for r in rows] == [("test", "kept")]


@sqlite_only
async def test_the_client_address_cannot_be_forged_with_x_forwarded_for(
    agg_settings: AggregatorSettings,
) -> None:
    admin = api_key(agg_settings.database_url, Role.ADMIN)
    forged = {"X-Forwarded-For": "203.0.113.9"}
    behind_proxy = agg_settings.model_copy(
        update={"api": agg_settings.api.model_copy(update={"trusted_proxies": ["127.0.0.1"]})}
    )
    clients: list[str] = []
    for settings in (agg_settings, behind_proxy):
        async with running_aggregator(settings) as url, api_client(url, admin) as http:
            await http.post(f"/transactions/{uuid4()}/void", headers=forged)
            [last] = (await http.get("/audit", params={"after": len(clients) + 1})).json()["items"]
            clients.append(last["client"])
    assert clients == ["127.0.0.1", "203.0.113.9"]
