"""Fault tests with real processes: scanner -> edge -> mosquitto -> aggregator -> SQLite ledger.

Each test scans N distinct items into DOCK-1 (so the expected ledger is exact), breaks one part
of the chain on the way, and then checks the ledger against that ground truth: every
transaction the edge produced is posted exactly once, balances and movement count are exact.
"""

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator

import pytest

from tests.e2e.support import (
    FAULT_EXIT_CODE,
    HTTP_TIMEOUT_S,
    Chain,
    assert_ledger_matches,
    bad_payloads,
    chain_items,
    publish,
    receive_script,
    wait_for,
)

N = 200
FAULT_ENV = "STOCKWIRE_AGG_FAULT_EXIT_AFTER_COMMITS"

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def scanning(chain: Chain, lines: list[str], gap_s: float) -> AsyncIterator[None]:
    """Send lines in the background; cancelled on the way out if the test failed early."""
    task = asyncio.create_task(chain.scan(lines, gap_s))
    try:
        yield
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def posted_ids(chain: Chain) -> set[str]:
    return {txn_id for txn_id, _ in chain.ledger.posted()}


async def test_broker_killed_mid_run_loses_and_repeats_nothing(chain: Chain) -> None:
    items = chain_items(N)
    first, rest = items[: N // 2], items[N // 2 :]
    await chain.start_aggregator()
    chain.start_edge()
    async with scanning(chain, receive_script(first), gap_s=0.01):
        await wait_for(lambda: chain.ledger.posted_count() >= N // 8, "the first txns posted")
        chain.broker.kill()  # kill -9 while txns and acks are on the wire
    await chain.scan(rest)
    # The outage only grows the outbox: everything scanned since cannot have been acked.
    await wait_for(lambda: chain.outbox.rows() >= len(rest), "the outbox holds the rest")
    chain.broker.start()  # same port
    await chain.settled(N)
    assert_ledger_matches(chain, items)


async def test_edge_killed_with_a_full_outbox_replays_after_restart(chain: Chain) -> None:
    items = chain_items(N, first=1000)
    await chain.start_aggregator()
    chain.start_edge()
    chain.broker.stop()
    await chain.scan(receive_script(items))
    await wait_for(lambda: chain.outbox.rows() == N, "all N txns stored in the outbox")
    produced = chain.outbox.ids()
    assert chain.ledger.posted_count() == 0
    assert chain.edge.kill() == -9
    chain.broker.start()
    chain.start_edge()  # replays the outbox it finds on disk
    await chain.settled(N)
    assert posted_ids(chain) == produced
    assert_ledger_matches(chain, items)


async def test_aggregator_killed_between_commit_and_ack_gets_duplicates(chain: Chain) -> None:
    items = chain_items(N, first=2000)
    chain.start_edge()
    await chain.scan(receive_script(items))
    await wait_for(lambda: chain.outbox.rows() == N, "all N txns stored (nobody acks yet)")
    produced = chain.outbox.ids()

    chain.aggregator.start({FAULT_ENV: "1"})  # exits after its first commit, before the ack
    assert await chain.aggregator.exited() == FAULT_EXIT_CODE
    committed = posted_ids(chain)
    assert committed, "the batch was committed before the process died"
    assert committed <= chain.outbox.ids(), "committed txns were never acked: still pending"

    await chain.start_aggregator()  # without the hook: the edge's replay gets `duplicate`s
    await chain.settled(N)
    assert posted_ids(chain) == produced
    assert_ledger_matches(chain, items)


async def test_bad_payloads_are_dead_lettered_and_good_data_still_posts(chain: Chain) -> None:
    items = chain_items(N, first=3000)
    first, rest = items[: N // 2], items[N // 2 :]
    bad = bad_payloads()
    await chain.start_aggregator()
    chain.start_edge()
    await chain.scan(receive_script(first))
    await wait_for(lambda: chain.ledger.posted_count() >= N // 4, "the first txns posted")
    await publish(chain.broker, [(topic, payload) for topic, payload, _ in bad])
    await chain.scan(rest)
    await chain.settled(N)
    await wait_for(lambda: len(chain.ledger.dead_letters()) >= len(bad), "every bad payload kept")

    letters = sorted(chain.ledger.dead_letters())
    assert len(letters) == len(bad)
    for topic, _, word in bad:
        assert any(t == topic and word in reason for t, reason in letters), (topic, word, letters)
    page = await asyncio.to_thread(get_json, f"{chain.api}/dead-letters", chain.viewer_key())
    assert len(page["items"]) == len(bad)
    assert chain.aggregator.running(), "bad input never stops the aggregator"
    assert_ledger_matches(chain, items)


def get_json(url: str, key: str) -> dict[str, list[object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        data = json.loads(response.read())
    assert isinstance(data, dict)
    return data
