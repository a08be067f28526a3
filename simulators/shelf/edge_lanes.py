"""A scenario shelf as the edge is configured for it: one LaneConfig per lane."""

from edge_agent.settings import CellRef, LaneConfig
from simulators.scenario import Scenario, ScenarioError
from simulators.shelf.scenario_checks import lane_cells


def lane_configs(scenario: Scenario, shelf_id: str) -> tuple[LaneConfig, ...]:
    """The edge's lanes of the scenario's shelf `shelf_id` (ids lane-1, lane-2, ... in order)."""
    actor = next((s for s in scenario.shelves if s.id == shelf_id), None)
    if actor is None:
        raise ScenarioError(f"no shelf {shelf_id!r} in the scenario")
    items = {i.sku: i for i in scenario.items}
    out = []
    for n, lane in enumerate(actor.lanes, start=1):
        item = items[lane.sku]
        assert item.unit_weight_g is not None  # checked when the scenario loaded
        out.append(
            LaneConfig(
                id=f"lane-{n}",
                location=lane.location,
                gtin=item.gtin,  # as scanners and portals post it: one item in the ledger
                unit_weight_g=item.unit_weight_g,
                cells=tuple(CellRef(unit=u, channel=c) for u, c, _ in lane_cells(lane)),
                restock_from=lane.restock_from,
            )
        )
    return tuple(out)
