"""A kill -9 of the edge loses no reading it took from the scanner (real processes).

Chain: ScriptedScanner -> edge (subprocess) -> mosquitto -> aggregator (subprocess) -> SQLite.
Each test waits until the edge has taken every line (journaled it), kills it, restarts it, and
checks the ledger against the ground truth: every item received once at DOCK-1.
"""

import pytest

from tests.e2e.support import (
    DOCK,
    FAULT_EXIT_CODE,
    Chain,
    assert_ledger_matches,
    chain_items,
    query,
    receive_script,
    wait_for,
)

N = 60
ROWS_MAX = 5
SMALL_OUTBOX = {"STOCKWIRE_EDGE_OUTBOX__ROWS_MAX": str(ROWS_MAX)}
FAULT_ENV = "STOCKWIRE_EDGE_FAULT_EXIT_AFTER_READINGS"

pytestmark = pytest.mark.e2e


def journaled(chain: Chain) -> int:
    """Readings in the edge's journal not consumed by its recognizer yet."""
    rows = query(chain.outbox.path, "SELECT count(*) FROM readings")
    return int(rows[0][0]) if rows else -1


def consumed_seq(chain: Chain) -> int:
    rows = query(chain.outbox.path, "SELECT consumed_seq FROM recognizer_state")
    return int(rows[0][0]) if rows else -1


async def restart_edge(chain: Chain, env: dict[str, str] | None = None) -> None:
    """Start the edge again and wait until it is the scanner's client (no line goes to the
    socket of the killed one)."""
    accepted = chain.scanner.accepted
    chain.edge.start(env)
    await wait_for(lambda: chain.scanner.accepted > accepted, "the edge reconnected")


async def test_readings_behind_a_full_outbox_survive_a_kill(chain: Chain) -> None:
    items = chain_items(N, first=5000)
    chain.edge.start(SMALL_OUTBOX)  # no aggregator yet: nothing is acked
    await chain.scan(receive_script(items))
    await wait_for(
        lambda: chain.outbox.rows() == ROWS_MAX and journaled(chain) >= N - ROWS_MAX,
        "every line taken: the outbox full, the other readings in the journal",
    )
    assert chain.ledger.posted_count() == 0
    assert chain.edge.kill() == -9
    await chain.start_aggregator()
    await restart_edge(chain, SMALL_OUTBOX)
    await chain.settled(N)
    assert journaled(chain) == 0
    assert_ledger_matches(chain, items)


async def test_mode_and_location_survive_a_kill(chain: Chain) -> None:
    items = chain_items(N, first=6000)
    await chain.start_aggregator()
    chain.start_edge()
    await chain.scan(["SW:MODE:RECEIVE", f"SW:LOC:{DOCK}"])
    await wait_for(
        lambda: consumed_seq(chain) == 1 and journaled(chain) == 0, "both commands consumed"
    )
    assert chain.edge.kill() == -9
    await restart_edge(chain)
    await chain.scan(items)
    await chain.settled(N)
    assert_ledger_matches(chain, items)  # all received at DOCK-1, nothing rejected


async def test_a_kill_between_journal_and_stage_commit_loses_and_repeats_nothing(
    chain: Chain,
) -> None:
    items = chain_items(N, first=7000)
    lines = receive_script(items)
    await chain.start_aggregator()
    # Exits right after the journal commit that holds the last line, before a stage sees it.
    chain.edge.start({FAULT_ENV: str(len(lines))})
    await chain.scan(lines)
    assert await chain.edge.exited() == FAULT_EXIT_CODE
    assert journaled(chain) > 0, "readings were journaled and not consumed"
    await restart_edge(chain)
    await chain.settled(N)
    assert journaled(chain) == 0
    assert_ledger_matches(chain, items)
