"""RFID end to end: LLRP reader simulator -> edge (unmodified sllurp, subprocess) -> mosquitto
-> aggregator (subprocess) -> ledger, with a reader reboot mid-pass and the edge killed with -9
while a pass is open. Ground truth: the scenario's balances, and every EPC moved once per pass
it really made."""

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from simulators.llrp.driver import SightingDriver
from simulators.llrp.reader import LLRPReader
from simulators.llrp.run import portal_run, serve
from simulators.plan import Plan, build
from simulators.portal.truth import TruePass
from simulators.sightings import Sighting
from tests.e2e.support import HOST, Chain, query, wait_for

SCENARIO = Path(__file__).parent / "rfid-faults.toml"
PORTAL = "portal-1"
KILLED_PASS = 2  # the third load: the edge dies right after it has left the field
RUN_WAIT_S = 120.0


@pytest.fixture
async def reader(chain: Chain) -> AsyncIterator[tuple[Plan, LLRPReader, SightingDriver]]:
    plan = build(SCENARIO)
    run = portal_run(plan, PORTAL)
    llrp = LLRPReader(run.model, HOST, 0)
    driver = await serve(llrp, run.sightings, faults=run.faults, hold_until_inventory=True)
    config = chain.workdir / "edge.toml"
    with config.open("a") as out:
        out.write(
            f'\n[[devices]]\nid = "{PORTAL}"\nprofile = "impinj-speedway-r420"\n'
            f'tcp = "{HOST}:{llrp.port}"\nportal = "dock-door-portal"\nlocation = "DOCK-1"\n'
        )
    try:
        yield plan, llrp, driver
    finally:
        await driver.stop()
        await llrp.close()


def fed_by(sightings: Sequence[Sighting], at_s: float) -> int:
    """How many sightings the driver has fed once its timeline reaches `at_s`."""
    return sum(s.at_s <= at_s for s in sightings)


def epc_moves(chain: Chain) -> Counter[str]:
    return Counter(str(r[0]) for r in query(chain.ledger.path, "SELECT epc FROM epc_moves"))


def expected_moves(passes: Sequence[TruePass], items: set[str]) -> Counter[str]:
    """Item EPCs (not the pallets' SSCC tags) once per pass."""
    return Counter(epc for p in passes for epc in p.epcs if epc in items)


def physical(chain: Chain) -> dict[tuple[str, str], int]:
    return chain.ledger.physical_balances()


@pytest.mark.e2e
async def test_portal_passes_survive_a_reader_reboot_and_an_edge_kill(
    chain: Chain, reader: tuple[Plan, LLRPReader, SightingDriver]
) -> None:
    plan, llrp, driver = reader
    sightings = portal_run(plan, PORTAL).sightings
    truth = {(b.gtin, b.location): b.qty for b in plan.truth}
    await chain.start_aggregator()
    chain.start_edge()

    killed = plan.passes[KILLED_PASS]
    await wait_for(
        lambda: driver.fed >= fed_by(sightings, killed.leave_s),
        "the third load to leave the read field",
        RUN_WAIT_S,
    )
    chain.edge.kill()
    posted_epcs = set(epc_moves(chain))
    assert not posted_epcs & set(killed.epcs), "the pass closed before the kill: not mid-pass"
    chain.start_edge()

    await wait_for(lambda: driver.done.is_set(), "every sighting fed", RUN_WAIT_S)
    await wait_for(
        lambda: physical(chain) == truth and chain.outbox.rows() == 0,
        f"ledger == ground truth {truth} (ledger {physical(chain)})",
        RUN_WAIT_S,
    )
    items = set(epc_moves(chain))
    assert epc_moves(chain) == expected_moves(plan.passes, items), "an EPC moved twice or never"
    assert len(items) == sum(len(p.epcs) - 1 for p in plan.passes if p.direction == "in")
    statuses = chain.ledger.statuses()
    assert set(statuses) == {"posted"}, statuses
    loads = query(chain.ledger.path, "SELECT count(DISTINCT load_id) FROM transactions")
    assert loads[0][0] == len(plan.passes)
    assert llrp.stats.reboots == 1
    assert llrp.stats.connections_accepted >= 3  # first, after the reboot, after the kill
    assert chain.edge.starts == 2
