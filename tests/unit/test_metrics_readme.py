"""The README's "Metrics and logs" tables list exactly the metrics the programs expose."""

import re

from aggregator import metrics as aggregator_metrics
from edge_agent import metrics as edge_metrics
from tests.conftest import ROOT


def listed(prefix: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Metrics and logs\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^\| `({prefix}\w+)` \|", section, re.MULTILINE)


def test_the_readme_lists_the_aggregator_metrics() -> None:
    exposed = [spec.exposed for spec in aggregator_metrics.SPECS]
    assert listed(aggregator_metrics.PREFIX) == exposed


def test_the_readme_lists_the_edge_metrics() -> None:
    assert listed(edge_metrics.PREFIX) == [spec.exposed for spec in edge_metrics.SPECS]
