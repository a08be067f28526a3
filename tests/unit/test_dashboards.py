"""The Grafana dashboards (deploy/grafana) ask only for what the telemetry sink writes.

Every query of every panel and template variable is read by a small Flux extractor: the
measurements it names (`r._measurement == "x"`), the fields (`r._field == "f"`), every column it
touches (`r.tag`, `r["tag"]`, `group(columns: [...])`, `keep`, `pivot`, `tag: "..."`) and the tag
values it compares with. All of them must be in stockwire.measurements.CATALOG, the contract
the sink writes by. The extractor is strict rather than clever: a form it cannot check (a regex
on `_field`, a lambda not called `r`, a Flux function it does not know) is itself a problem.
"""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockwire.events import AlertKind, Severity
from stockwire.measurements import BY_NAME, CATALOG, Measurement
from stockwire.topics import EdgeChannel
from stockwire.txn import TxnKind

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
PROVIDERS = GRAFANA / "provisioning" / "dashboards"

DATASOURCE_UID = "stockwire-influxdb"
SCHEMA_VERSION = 41  # the dashboard schema of Grafana 12 (deploy/compose.yml pins its image)
# The dashboards issue 8 asks for, by the title after "Stockwire / ".
ISSUE_DASHBOARDS = {"Site overview", "Dock doors", "Shelves", "Fleet", "Ledger health"}

# Columns every Flux table has.
FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}
# What Grafana's InfluxDB (Flux) datasource defines in `v`.
FLUX_VARIABLES = {
    "timeRangeStart",
    "timeRangeStop",
    "windowPeriod",
    "defaultBucket",
    "organization",
}
# Grafana's own variables ($__interval, ...) start with "__".
# Functions a query may pipe through: each one's column arguments are read below.
PIPE_FUNCTIONS = {
    "range",
    "filter",
    "group",
    "keep",
    "drop",
    "pivot",
    "sort",
    "limit",
    "aggregateWindow",
    "difference",
    "increase",
    "last",
    "first",
    "sum",
    "count",
    "mean",
    "median",
    "max",
    "min",
    "distinct",
    "yield",
}
SOURCES = {"from", "schema.tagValues"}
# The values some tags take, where the wire contract enumerates them (the catalog's docs say so).
TAG_VALUES: Mapping[tuple[str, str], frozenset[str]] = {
    ("alerts", "kind"): frozenset(AlertKind),
    ("alerts", "severity"): frozenset(Severity),
    ("movements", "kind"): frozenset(TxnKind),
    ("movements", "status"): frozenset({"posted", "pending"}),
    ("device_health", "kind"): frozenset({"rfid", "shelf", "scanner"}),
    ("dead_letters", "channel"): frozenset(EdgeChannel) - {EdgeChannel.ACK},
}

_COLUMN = r'\br\.(\w+)|\br\["([^"]*)"\]'
_COMPARE = re.compile(rf'(?:{_COLUMN})\s*(==|!=|=~|!~)\s*("[^"]*"|/[^/]*/|[\w.]+)')
_LAMBDA = re.compile(r"\(\s*([\w\s,]*?)\s*\)\s*=>")
_PIPE = re.compile(r"\|>\s*([\w.]+)\s*\(")
_SOURCE = re.compile(r"^\s*([\w.]+)\s*\(", re.MULTILINE)
_LIST_ARG = re.compile(r"\b(?:columns|rowKey|columnKey)\s*:\s*\[([^\]]*)\]")
_NAME_ARG = re.compile(r'\b(?:column|valueColumn|timeColumn|tag)\s*:\s*"([^"]*)"')
_BUCKET = re.compile(r"\bbucket\s*:\s*([^,)]+)")
_FLUX_VAR = re.compile(r"\bv\.(\w+)")
_GRAFANA_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_STRING = re.compile(r'"([^"]*)"')
_REGEX = re.compile(r"(?<![\w)\]])\s*/[^/\n]*/")  # a regex literal, not a division


@dataclass
class FluxRefs:
    """What one Flux query names."""

    measurements: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    compared: set[tuple[str, str]] = field(default_factory=set)  # (column, string value)
    sources: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    flux_variables: set[str] = field(default_factory=set)
    grafana_variables: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _code(query: str) -> str:
    """The query without comments and imports (`import "influxdata/influxdb/schema"`)."""
    lines = [line.split("//", 1)[0] for line in query.splitlines()]
    return "\n".join(line for line in lines if not line.strip().startswith("import "))


def _unbalanced(code: str) -> str | None:
    """The first bracket that does not pair up, outside strings and regex literals."""
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in _STRING.sub('""', _REGEX.sub("//", code)):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return char
    return stack[-1] if stack else None


def extract(query: str) -> FluxRefs:
    code = _code(query)
    refs = FluxRefs()
    bracket = _unbalanced(code)
    if bracket is not None or code.count('"') % 2:
        refs.problems.append(f"unbalanced {bracket or 'quote'}")
    for params in _LAMBDA.findall(code):
        if params != "r":
            refs.problems.append(f"a function of ({params}): name its one parameter r")
    for match in re.finditer(_COLUMN, code):
        refs.columns.add(match.group(1) or match.group(2))
    for a, b, op, value in _COMPARE.findall(code):
        column = a or b
        literal = value[1:-1] if value.startswith('"') else None
        if column in ("_measurement", "_field"):
            if op not in ("==", "!=") or literal is None:
                refs.problems.append(f"{column} {op} {value}: compare it with == and a string")
            elif column == "_measurement":
                refs.measurements.add(literal)
            else:
                refs.fields.add(literal)
        elif literal is not None:
            refs.compared.add((column, literal))
    for names in _LIST_ARG.findall(code):
        refs.columns.update(_STRING.findall(names))
    refs.columns.update(_NAME_ARG.findall(code))
    refs.functions.update(_PIPE.findall(code))
    refs.sources.update(_SOURCE.findall(code))
    for bucket in _BUCKET.findall(code):
        if bucket.strip() != "v.defaultBucket":
            refs.problems.append(
                f"bucket: {bucket.strip()}: use v.defaultBucket (the datasource's)"
            )
    refs.flux_variables.update(_FLUX_VAR.findall(code))
    refs.grafana_variables.update(a or b for a, b in _GRAFANA_VAR.findall(code))
    return refs


def check(query: str, variables: set[str]) -> list[str]:
    """Everything in `query` that is outside the catalog, or that the extractor cannot check;
    `variables` are the dashboard's template variables."""
    refs = extract(query)
    found = list(refs.problems)
    found += [f"unknown source {s}()" for s in sorted(refs.sources - SOURCES)]
    if not refs.sources:
        found.append("no source: a query starts with from(bucket: v.defaultBucket)")
    found += [
        f"function {f}() is not one the check knows"
        for f in sorted(refs.functions - PIPE_FUNCTIONS)
    ]
    found += [
        f"v.{v} is not a Grafana Flux variable"
        for v in sorted(refs.flux_variables - FLUX_VARIABLES)
    ]
    found += [
        f"${{{v}}} is not a variable of the dashboard"
        for v in sorted(refs.grafana_variables - variables)
        if not v.startswith("__")
    ]
    unknown = sorted(refs.measurements - set(BY_NAME))
    found += [f"measurement {m!r} is not in the catalog" for m in unknown]
    if "from" in refs.sources and not refs.measurements:
        found.append("the query names no measurement (r._measurement == ...)")
    named = [BY_NAME[m] for m in sorted(refs.measurements - set(unknown))]
    found += _field_and_column_problems(refs, named)
    return found


def _field_and_column_problems(refs: FluxRefs, named: list[Measurement]) -> list[str]:
    """Against the measurements the query names: a field must be in one of them, a column in
    each of them (a filter on it applies to all). Naming none (a tag-values variable over the
    whole bucket), anything in the catalog will do."""
    scope = named or list(CATALOG)
    names = ", ".join(m.name for m in named) or "any measurement"
    fields = set().union(*(m.fields for m in scope))
    found = [f"field {f!r} is not a field of {names}" for f in sorted(refs.fields - fields)]
    combine = set.intersection if named else set.union
    columns = combine(*({*m.all_tags, *m.fields} for m in scope))
    found += [
        f"column {c!r} is not a tag or field of {names}"
        for c in sorted(refs.columns - FLUX_COLUMNS - columns)
    ]
    for column, value in sorted(refs.compared):
        for m in scope:
            allowed = TAG_VALUES.get((m.name, column))
            if allowed is not None and value not in allowed:
                found.append(
                    f"{m.name}.{column} is never {value!r} (it is one of {sorted(allowed)})"
                )
    return found


# ---- the files ----------------------------------------------------------------------------


def _dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


@dataclass(frozen=True)
class Query:
    where: str
    text: str
    variables: frozenset[str]


def _queries() -> list[Query]:
    found = []
    for path, board in _dashboards().items():
        variables = frozenset(v["name"] for v in board["templating"]["list"])
        for v in board["templating"]["list"]:
            if v["type"] == "query":
                found.append(Query(f"{path.name} variable {v['name']}", v["query"], variables))
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                where = f"{path.name} panel {panel['title']!r} query {target['refId']}"
                found.append(Query(where, target["query"], variables))
    return found


QUERIES = _queries()


def test_the_dashboards_have_queries() -> None:
    assert len(QUERIES) >= 40, [q.where for q in QUERIES]


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_each_query_stays_in_the_catalog(query: Query) -> None:
    assert check(query.text, set(query.variables)) == [], query.text


def test_every_measurement_of_the_catalog_is_on_a_dashboard() -> None:
    """Not required by the contract, but a measurement nobody draws is a sign of a gap."""
    drawn = set().union(*(extract(q.text).measurements for q in QUERIES))
    assert drawn == set(BY_NAME)


def test_the_issue_dashboards_exist_with_unique_uids() -> None:
    boards = list(_dashboards().values())
    titles = {b["title"].removeprefix("Stockwire / ") for b in boards}
    assert titles >= ISSUE_DASHBOARDS
    uids = [b["uid"] for b in boards]
    assert len(set(uids)) == len(uids), uids
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid) for uid in uids), uids


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_each_dashboard_uses_the_provisioned_datasource(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert "id" not in board or board["id"] is None  # provisioning assigns it
    panels = list(_panels(board["panels"]))
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids), ids
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID, variable["name"]


def test_the_datasource_is_provisioned_from_the_environment() -> None:
    files = sorted(DATASOURCES.glob("*.yml"))
    assert files
    sources = [ds for f in files for ds in yaml.safe_load(f.read_text())["datasources"]]
    assert [ds["uid"] for ds in sources] == [DATASOURCE_UID]
    (ds,) = sources
    assert ds["type"] == "influxdb"
    assert ds["jsonData"]["version"] == "Flux"
    settings = [ds["url"], ds["jsonData"]["organization"], ds["jsonData"]["defaultBucket"]]
    settings.append(ds["secureJsonData"]["token"])
    # No address, org, bucket or token is baked in: all come from Grafana's environment.
    assert all(re.fullmatch(r"\$\{?[A-Z_]+\}?", value) for value in settings), settings


def test_the_dashboard_provider_reads_a_folder() -> None:
    files = sorted(PROVIDERS.glob("*.yml"))
    providers = [p for f in files for p in yaml.safe_load(f.read_text())["providers"]]
    assert len(providers) == 1
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"].startswith("/")


# ---- the extractor itself ------------------------------------------------------------------

GOOD = """
from(bucket: v.defaultBucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "lane_weight" and r._field == "grams")
  |> filter(fn: (r) => r["site"] =~ /^${site:regex}$/ and r.lane == "bolts")
  |> group(columns: ["device", "lane"])
  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)
"""


def test_a_good_query_passes_and_is_read() -> None:
    refs = extract(GOOD)
    assert refs.measurements == {"lane_weight"}
    assert refs.fields == {"grams"}
    assert refs.columns >= {"site", "lane", "device", "_measurement", "_field"}
    assert check(GOOD, {"site"}) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('"grams"', '"gram"'), "field 'gram' is not a field of lane_weight"),
        (('"lane_weight"', '"lane_weights"'), "measurement 'lane_weights' is not in the catalog"),
        (("r.lane ==", "r.lanes =="), "column 'lanes' is not a tag or field of lane_weight"),
        (('"device", "lane"', '"device", "item"'), "column 'item' is not a tag or field"),
        (('r["site"]', 'r["sites"]'), "column 'sites' is not a tag or field"),
        (('r._field == "grams"', "r._field =~ /gr.*/"), "_field =~ /gr.*/: compare it"),
        (("(r) => r._measurement", "(x) => r._measurement"), "a function of (x)"),
        (("v.defaultBucket", '"stockwire"'), 'bucket: "stockwire": use v.defaultBucket'),
        (("v.windowPeriod", "v.window"), "v.window is not a Grafana Flux variable"),
        (("${site:regex}", "${sites:regex}"), "${sites} is not a variable of the dashboard"),
        (("|> group(", "|> map(fn: (r) => r) |> group("), "function map() is not one"),
        (("createEmpty: false)", "createEmpty: false"), "unbalanced ("),
        (('["device", "lane"]', '["device", "lane")'), "unbalanced )"),
    ],
)
def test_a_bad_query_is_named(change: tuple[str, str], problem: str) -> None:
    old, new = change
    assert old in GOOD
    found = check(GOOD.replace(old, new, 1), {"site"})
    assert any(problem in p for p in found), found


def test_a_tag_value_outside_the_contract_is_named() -> None:
    query = (
        "from(bucket: v.defaultBucket) |> range(start: -1h)"
        ' |> filter(fn: (r) => r._measurement == "alerts" and r.kind == "lowstock")'
    )
    assert check(query, set()) == [
        f"alerts.kind is never 'lowstock' (it is one of {sorted(AlertKind)})"
    ]
    assert check(query.replace("lowstock", "low_stock"), set()) == []


def test_a_query_without_a_measurement_is_named() -> None:
    query = 'from(bucket: v.defaultBucket) |> range(start: -1h) |> filter(fn: (r) => r.site == "a")'
    assert check(query, set()) == ["the query names no measurement (r._measurement == ...)"]


def test_a_column_must_be_in_every_measurement_the_query_names() -> None:
    query = (
        "from(bucket: v.defaultBucket) |> range(start: -1h)"
        ' |> filter(fn: (r) => r._measurement == "agent" or r._measurement == "movements")'
        ' |> filter(fn: (r) => r.kind == "pick")'
    )
    assert check(query, set()) == ["column 'kind' is not a tag or field of agent, movements"]


def test_a_tag_values_variable_is_checked_too() -> None:
    query = (
        'import "influxdata/influxdb/schema"\n'
        'schema.tagValues(bucket: v.defaultBucket, tag: "antena",'
        ' predicate: (r) => r._measurement == "rfid_antenna")'
    )
    assert check(query, set()) == ["column 'antena' is not a tag or field of rfid_antenna"]
    assert check(query.replace("antena", "antenna"), set()) == []
