"""The README's measurement table is the catalog's (generated; see the module to regenerate)."""

from pathlib import Path

from aggregator.telemetry.readme_table import BEGIN, END, markdown_table
from stockwire.measurements import CATALOG

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_generated_from_the_catalog() -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == markdown_table(), (
        "README.md's measurements table is stale: paste `python -m "
        "aggregator.telemetry.readme_table` over it"
    )


def test_the_table_names_every_measurement_and_field() -> None:
    table = markdown_table()
    for measurement in CATALOG:
        assert f"| `{measurement.name}`: " in table
        for field in measurement.fields:
            assert f"| `{field}` |" in table
