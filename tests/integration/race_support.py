"""A ledger writer in its own process, for the tests of concurrent writers. Not forked from the
test process (it runs threads and an event loop): forked from a fork server, a clean process that
imported this module once, so 20 writers start without 20 imports."""

import asyncio
import json
import multiprocessing
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

from aggregator.ledger import Ledger
from aggregator.ledger.policy import Policy
from aggregator.migrate import upgrade_sync
from aggregator.writer import Writer
from stockwire.txn import TxnBatch
from tests.integration.aggregator_support import WAIT_S

SPAWN = multiprocessing.get_context("forkserver")
SPAWN.set_forkserver_preload([__name__])


def post_all(db_url: str, site: str, payloads: list[str], out: Path, start: Barrier) -> None:
    """Post each batch (TxnBatch JSON) in order once every writer is ready; write the outcomes
    ([txn id, status, reason] in posting order) as JSON to `out`."""
    _post_all(db_url, Ledger(Writer(db_url), site=site), payloads, out, start)


def post_all_forbidding(
    db_url: str, site: str, payloads: list[str], out: Path, start: Barrier
) -> None:
    """post_all with negative stock forbidden site-wide."""
    policy = Policy(negative_stock="forbid")
    _post_all(db_url, Ledger(Writer(db_url), site=site, policy=policy), payloads, out, start)


def _post_all(db_url: str, ledger: Ledger, payloads: list[str], out: Path, start: Barrier) -> None:
    batches = [TxnBatch.model_validate_json(p) for p in payloads]
    outcomes = asyncio.run(_post(ledger, batches, start))
    out.write_text(json.dumps(outcomes))


async def _post(ledger: Ledger, batches: list[TxnBatch], start: Barrier) -> list[list[str | None]]:
    try:
        start.wait()
        return [
            [str(r.id), r.status.value, r.reason]
            for b in batches
            for r in await ledger.post_batch(b)
        ]
    finally:
        ledger.writer.close()


def upgrade_when_ready(db_url: str, start: Barrier) -> None:
    """Migrate to head once every process is ready (what each aggregator does as it starts)."""
    start.wait()
    upgrade_sync(db_url)


async def together(target: Callable[..., None], args: list[tuple[object, ...]]) -> list[int | None]:
    """Run target(*a, start) in a spawned process per `a`, released at once by the barrier
    `start`; their exit codes."""
    start = SPAWN.Barrier(len(args))
    procs = [SPAWN.Process(target=target, args=(*a, start)) for a in args]
    for p in procs:
        p.start()
    try:
        for p in procs:
            await asyncio.to_thread(p.join, 4 * WAIT_S)
    finally:
        for p in procs:
            p.kill()
    return [p.exitcode for p in procs]
