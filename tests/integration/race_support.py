"""A ledger writer in its own process, for the tests of concurrent writers (spawned, not forked:
the test process runs threads and an event loop)."""

import asyncio
import json
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from aggregator.ledger import Ledger
from aggregator.migrate import upgrade_sync
from aggregator.writer import Writer
from stockwire.txn import TxnBatch

SPAWN = multiprocessing.get_context("spawn")


def post_all(db_url: str, site: str, payloads: list[str], out: Path, start: Barrier) -> None:
    """Post each batch (TxnBatch JSON) in order once every writer is ready; write the outcomes
    ([txn id, status] in posting order) as JSON to `out`."""
    batches = [TxnBatch.model_validate_json(p) for p in payloads]
    outcomes = asyncio.run(_post(db_url, site, batches, start))
    out.write_text(json.dumps(outcomes))


async def _post(db_url: str, site: str, batches: list[TxnBatch], start: Barrier) -> list[list[str]]:
    writer = Writer(db_url)
    try:
        ledger = Ledger(writer, site=site)
        start.wait()
        return [[str(r.id), r.status.value] for b in batches for r in await ledger.post_batch(b)]
    finally:
        writer.close()


def upgrade_when_ready(db_url: str, start: Barrier) -> None:
    """Migrate to head once every process is ready (what each aggregator does as it starts)."""
    start.wait()
    upgrade_sync(db_url)
