"""Load-cell shelf end to end, over Modbus TCP and over RTU on a socat pty pair: the shelf
simulator (scenarios/shelf.toml: put-aways, picks of one and several, a return onto a plate of
two cells, a hand rest, a knock, a misplaced item, a transmitter absent for 4 s) -> edge
(pymodbus, subprocess, killed with -9 mid-run) -> mosquitto -> aggregator (subprocess) ->
ledger. Ground truth: the scenario's balances, less the misplaced item, which waits in review."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from edge_agent.settings import LaneConfig
from simulators.ledger_check import differences
from simulators.plan import Plan, build, shelf_faults, shelf_world
from simulators.shelf.edge_lanes import lane_configs
from simulators.shelf.run import FirstRequestClock, shelf_server
from simulators.shelf.server import ShelfServer
from tests.e2e.support import HOST, Chain, query, wait_for
from tests.integration.socat_pty import pty_pair

SHELF = "shelf-a10"
SCANNER = "scan-dock"
KILL_AT_S = 10.0  # scenario time: after the first picks, before the hand rest and the fault
RUN_WAIT_S = 120.0


def scenario() -> Path:
    return Path(str(resources.files("simulators") / "scenarios" / "shelf.toml"))


def device_toml(plan: Plan, where: str) -> str:
    lines = [
        "\n[[devices]]",
        f'id = "{SHELF}"',
        f'profile = "{plan.shelves[SHELF].profile}"',
        where,
        'shelf = "load-cell-shelf"',
    ]
    for lane in lane_configs(plan.scenario, SHELF):
        lines += ["[[devices.lanes]]", *_lane_toml(lane)]
    return "\n".join(lines) + "\n"


def _lane_toml(lane: LaneConfig) -> list[str]:
    out = []
    for key, value in lane.model_dump(exclude_none=True).items():
        if key == "cells":
            cells = ", ".join(f"{{ unit = {c['unit']}, channel = {c['channel']} }}" for c in value)
            out.append(f"cells = [{cells}]")
        else:
            out.append(f"{key} = {value!r}".replace("'", '"'))
    return out


@pytest.fixture(params=["tcp", "rtu"])
async def shelf(
    request: pytest.FixtureRequest, chain: Chain
) -> AsyncIterator[tuple[Plan, ShelfServer, FirstRequestClock]]:
    plan = build(scenario())
    clock = FirstRequestClock()
    server = shelf_server(
        plan.shelves[SHELF].profile, shelf_world(plan, SHELF), shelf_faults(plan, SHELF), clock
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(server.close)
        if request.param == "tcp":
            where = f'tcp = "{HOST}:{await server.start_tcp(HOST, 0)}"'
        else:
            line = await stack.enter_async_context(pty_pair())
            await server.start_rtu(line.device_end)
            where = f'serial = "{line.edge_end}"'
        with (chain.workdir / "edge.toml").open("a") as out:
            out.write(device_toml(plan, where))
        yield plan, server, clock


def ledger_stock(chain: Chain) -> list[dict[str, Any]]:
    return [
        {"gtin": gtin, "location": location, "lot": None, "qty": qty}
        for (gtin, location), qty in chain.ledger.physical_balances().items()
    ]


def pending_at(chain: Chain, location: str) -> list[tuple[str, str]]:
    """(kind, review reason) of the shelf's transactions waiting in review at `location`."""
    rows = query(
        chain.ledger.path,
        "SELECT kind, review_reason FROM transactions WHERE status = 'pending'"
        " AND json_extract(body, '$.device') = ?"
        " AND ? IN (json_extract(body, '$.to_location'), json_extract(body, '$.from_location'))",
        (SHELF, location),
    )
    return [(str(k), str(r)) for k, r in rows]


@pytest.mark.e2e
async def test_shelf_ledger_matches_ground_truth_through_faults_and_an_edge_kill(
    chain: Chain, shelf: tuple[Plan, ShelfServer, FirstRequestClock]
) -> None:
    plan, server, clock = shelf
    gtins = {i.sku: i.gtin for i in plan.scenario.items}
    run = plan.shelves[SHELF]
    await chain.start_aggregator()
    chain.start_edge()
    await chain.scan([s.barcode.render(False) for s in plan.scans[SCANNER]])

    await wait_for(lambda: clock.started and clock() >= KILL_AT_S, "the shelf's first picks")
    chain.edge.kill()
    chain.start_edge()

    await wait_for(lambda: clock() >= run.end_s, "every change settled", RUN_WAIT_S)

    def agrees() -> bool:
        return not differences(plan.truth, ledger_stock(chain), gtins, plan.flagged)

    await wait_for(
        lambda: agrees() and chain.outbox.rows() == 0,
        "ledger == ground truth less the flagged move: "
        f"{differences(plan.truth, ledger_stock(chain), gtins, plan.flagged)}",
        RUN_WAIT_S,
    )
    (misplaced,) = plan.flagged
    review = pending_at(chain, misplaced.to_location)
    assert review, "the misplaced item did not land in review"
    assert server.stats.faults.get("absent", 0) > 0, "the transmitter was never absent"
    assert chain.edge.starts == 2
    assert not chain.ledger.dead_letters()
