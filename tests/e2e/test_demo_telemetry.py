"""`stockwire demo --telemetry-url`: what a running site writes is read back from a real server
(VictoriaMetrics speaking the InfluxDB v2 write API)."""

import subprocess
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from simulators.demo import default_scenario
from simulators.ground_truth import Balance
from simulators.ledger_check import differences
from simulators.plan import build
from simulators.victoria_metrics import VictoriaMetrics
from tests.e2e.test_demo import DEMO_TIMEOUT_S, stockwire


@pytest.mark.e2e
def test_the_demo_writes_stock_levels_movements_and_edge_samples_to_the_server(
    tmp_path: Path, victoria_metrics: VictoriaMetrics
) -> None:
    done = subprocess.run(
        stockwire(
            "demo",
            *("--duration", "60", "--check", "--workdir", str(tmp_path / "demo")),
            *("--telemetry-url", victoria_metrics.url),
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"telemetry -> {victoria_metrics.url}" in done.stdout, output
    found = victoria_metrics.export()  # the demo has stopped: everything it wrote is there
    plan = build(default_scenario())

    # The last stock_level of each item at each place is the ledger's balance: the demo's
    # check against the ground truth holds for it too (lots summed, as stock_level sums them).
    stock = []
    for series in found:
        if series.name == "stock_level_qty":
            labels = series.labels
            assert set(labels) == {"site", "item", "location"}, labels
            assert labels["site"] == plan.scenario.site
            at_end = max(zip(series.timestamps_ms, series.values, strict=True))[1]
            stock.append({"sku": labels["item"], "location": labels["location"], "qty": at_end})
    assert stock, output
    gtins = {i.sku: i.gtin for i in plan.scenario.items}
    summed: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    for b in plan.truth:
        summed[(b.sku, b.gtin, b.location)] += b.qty
    truth = [Balance(sku, gtin, place, None, qty) for (sku, gtin, place), qty in summed.items()]
    flagged = [replace(move, lot=None) for move in plan.flagged]
    assert differences(truth, stock, gtins, flagged) == []

    names = {s.name for s in found}
    assert {"movements_count", "movements_units", "posting_delay_p95_s", "ingest_txns"} <= names
    assert "edge_status_online" in names, sorted(names)

    # The edge's own samples, as it sent them: tagged with site, edge and device.
    edge_samples = {"agent_rss_bytes", "lane_weight_grams", "scans_scans", "rfid_antenna_reads"}
    assert edge_samples <= names, sorted(names)
    for series in found:
        if series.name in edge_samples:
            assert {"site", "edge", "device"} <= set(series.labels), series
            assert series.labels["site"] == plan.scenario.site
    lanes = [s for s in found if s.name == "lane_weight_grams"]
    assert lanes, names
    assert all("lane" in s.labels for s in lanes), lanes
    scanners = {s.labels["device"] for s in found if s.name == "scans_scans"}
    assert scanners <= {a.id for a in plan.scenario.scanners}, scanners
    assert sum(sum(s.values) for s in found if s.name == "scans_scans") > 0
