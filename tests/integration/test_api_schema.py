"""schemathesis against the running aggregator's own /openapi.json, with an admin key, on a
ledger with data in it: no server error, only documented status codes and content types,
responses that match their schemas, invalid input refused, auth not ignored.

It runs schemathesis' own runner (`st run`): its coverage phase sends every parameter's
boundaries (2**63 for an id without a maximum) before the random fuzzing. Bounded: a few dozen
examples per operation, a fixed seed (the same cases on every run), no shrinking."""

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.schema import audit_log, count_lines, count_tasks, items, locations, reorder_points
from aggregator.settings import AggregatorSettings
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import api_key, batch, running_aggregator, txn

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

EPC = "30340242201D8840009EFD01"
SERIAL = "SN-0001"
EXAMPLES_MAX = 20  # per operation and phase
RUN_TIMEOUT_S = 240
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)


async def st_run(url: str, key: str, config: Path) -> tuple[int, str]:
    argv = [
        str(Path(sys.executable).with_name("st")),
        f"--config-file={config}",
        "run",
        f"{url}/openapi.json",
        f"--header=Authorization: Bearer {key}",
        "--phases=examples,coverage,fuzzing",
        f"--checks={','.join(CHECKS)}",
        "--mode=all",
        f"--max-examples={EXAMPLES_MAX}",
        "--seed=1",
        "--no-shrink",
        "--workers=1",
        "--request-timeout=10",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=config.parent, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_schemathesis_finds_nothing(
    agg_settings: AggregatorSettings, ledger: Ledger, engine: AsyncEngine, tmp_path: Path
) -> None:
    k = TxnKind
    pending = txn(k.RECEIPT, 7, to_location="B-1", confidence=0.1)
    tagged = txn(k.RECEIPT, 1, epcs=(EPC,), to_location="A-1")
    serial = txn(k.RECEIPT, 1, serials=(SERIAL,), to_location="A-1")
    receipts = (txn(k.RECEIPT, n, to_location="A-1") for n in range(1, 6))
    await ledger.post(batch(*receipts, tagged, serial, pending))
    task_id, line_id = await _count_task(engine)
    # Random UUIDs and EPCs never name anything: these do (approve, then 409s; a tag's history).
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[cache]\nenabled = false\n[parameters]\n"
        f'"path.txn_id" = "{pending.id}"\n"path.epc" = "{EPC}"\n"path.serial" = "{SERIAL}"\n'
        f'"path.task_id" = {task_id}\n"path.line_id" = {line_id}\n'
        '"query.sku" = "SKU-1"\n"query.location" = "A-1"\n'  # a reorder point there
    )
    admin = api_key(agg_settings.database_url, Role.ADMIN)
    async with running_aggregator(agg_settings) as url:
        code, report = await st_run(url, admin, config)
    assert code == 0, report
    assert "Missing test data" not in report, report
    async with engine.connect() as conn:
        query = sa.select(audit_log.c.action).where(audit_log.c.status < 300).distinct()
        succeeded = set((await conn.execute(query)).scalars())
    assert {"reverse", "approve", "create_key"} <= succeeded, "the key let schemathesis write"


async def _count_task(engine: AsyncEngine) -> tuple[int, int]:
    """An open count task on A-1 with a line counted by someone else, waiting for approval;
    a reorder point of SKU-1 at A-1."""
    async with engine.begin() as conn:
        item = (await conn.execute(sa.select(items.c.id).where(items.c.sku == "SKU-1"))).scalar()
        place = await conn.scalar(sa.select(locations.c.id).where(locations.c.code == "A-1"))
        task = {"location_id": place, "state": "open", "started_by": "someone"}
        made = await conn.execute(
            sa.insert(count_tasks).values(started_at=datetime.now(UTC), **task)
        )
        task_id = made.inserted_primary_key[0]  # type: ignore[index]
        line = {"task_id": task_id, "item_id": item, "location_id": place, "lot": ""}
        made = await conn.execute(
            sa.insert(count_lines).values(
                book=15, counted=0, state="review", counted_by="someone", **line
            )
        )
        line_id = made.inserted_primary_key[0]  # type: ignore[index]
        point = {"item_id": item, "location_id": place, "reorder_point": 3}
        await conn.execute(sa.insert(reorder_points).values(**point))
    return int(task_id), int(line_id)
