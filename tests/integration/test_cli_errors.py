"""A new user's mistakes on the command line: `python -m stockwire ...` for real, in processes.

Each case is a wrong argument, config file or environment variable; the program must exit 2 (a
usage or configuration error), name the thing that is wrong, and print no traceback. The cases
run at once (each process starts in about a second) and each is checked by its own test.
"""

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_SITE = Path(__file__).parents[2] / "simulators" / "scenarios" / "small-site.toml"
RUN_TIMEOUT_S = 60.0

EDGE = """
site = "site1"
edge = "dock-1"

[outbox]
path = "{tmp}/outbox.sqlite"

[[devices]]
id = "scan-1"
profile = "generic-serial-scanner"
serial = "{tmp}/ttyNOPE"
"""
PORTAL = """
[[devices]]
id = "door-3"
profile = "impinj-r700"
tcp = "127.0.0.1:5084"
location = "DOCK-3"
portal = "dock-dor-portal"
"""
AGGREGATOR = """
site = "site1"
database_url = "{url}"
"""


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    files: dict[str, str]  # name -> text ({tmp} is the case's folder)
    env: dict[str, str]
    exit_code: int
    says: tuple[str, ...]  # in stderr (stdout for --help)
    never: tuple[str, ...] = ()


CASES = {
    "log-level": Case(
        ("--log-level", "LOUD", "schema"),
        {},
        {},
        2,
        ("--log-level", "invalid choice: 'LOUD'", "DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    "log-level-lower-case": Case(
        ("--log-level", "warning", "schema", "--out", "{tmp}"), {}, {}, 0, ()
    ),
    "edge-config-help": Case(("edge", "--help"), {}, {}, 0, ("--config", "edge.example.toml")),
    "aggregator-config-help": Case(
        ("aggregator", "--help"), {}, {}, 0, ("--config", "aggregator.example.toml")
    ),
    "scanner-id": Case(
        ("sim", "scanner", "--scenario", str(SMALL_SITE), "--scanner", "nope", "--tcp", ":0"),
        {},
        {},
        2,
        ("no scanner 'nope'", "scan-dock, scan-a, scan-b"),
    ),
    "device-profile": Case(
        ("edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE.replace('"generic-serial-scanner"', '"generic-serial-scanr"')},
        {},
        2,
        (
            "{tmp}/edge.toml",
            "device 'scan-1'",
            "profile: no profile named 'generic-serial-scanr'; known: ",
            "generic-serial-scanner",
        ),
        ("generic-serial-scanr.toml",),
    ),
    "portal-profile": Case(
        ("edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE + PORTAL},
        {},
        2,
        (
            "{tmp}/edge.toml",
            "device 'door-3': portal: no profile named 'dock-dor-portal'; known: dock-door-portal",
        ),
        ("dock-dor-portal.toml",),
    ),
    "edge-env": Case(
        ("edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE},
        {"STOCKWIRE_EDGE_MQTT__PORT": "not-a-port"},
        2,
        ("mqtt.port (environment variable STOCKWIRE_EDGE_MQTT__PORT): ", "valid integer"),
        ("edge.toml",),
    ),
    "edge-env-json": Case(
        ("edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE},
        {"STOCKWIRE_EDGE_DEVICES": "scan-1"},
        2,
        ("STOCKWIRE_EDGE_DEVICES: not valid JSON",),
    ),
    "edge-env-typo": Case(
        ("edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE},
        {"STOCKWIRE_EDGE_TICKMS": "100"},
        2,
        ("environment variable STOCKWIRE_EDGE_TICKMS: names no setting", "tick_ms"),
    ),
    "log-format-env": Case(
        ("schema",), {}, {"STOCKWIRE_LOG_FORMAT": "yaml"}, 2, ("$STOCKWIRE_LOG_FORMAT: 'yaml'",)
    ),
    "edge-metrics-address": Case(  # JSON log lines, then the error (TEST-NET-1 is not ours)
        ("--log-format", "json", "edge", "--config", "{tmp}/edge.toml"),
        {"edge.toml": EDGE + '[metrics]\nhost = "192.0.2.1"\nport = 9108\n'},
        {},
        2,
        (
            '"logger": "edge_agent.main", "message": "edge site1/dock-1 starting',
            '"edge": "dock-1"}',
            "{tmp}/edge.toml: metrics: cannot listen on 192.0.2.1:9108: ",
        ),
    ),
    "database-url": Case(
        ("aggregator", "--config", "{tmp}/agg.toml"),
        {"agg.toml": AGGREGATOR.format(url="mysql://u@127.0.0.1/ledger")},
        {},
        2,
        ("{tmp}/agg.toml", "database_url", "'mysql' is not supported"),
    ),
    "database-url-env": Case(
        ("keys", "list", "--config", "{tmp}/agg.toml"),
        {"agg.toml": AGGREGATOR.format(url="sqlite+aiosqlite:///{tmp}/ledger.db")},
        {"STOCKWIRE_AGG_DATABASE_URL": "ledger.db"},
        2,
        ("database_url (environment variable STOCKWIRE_AGG_DATABASE_URL)", "not a database URL"),
    ),
}


@dataclass(frozen=True)
class Outcome:
    tmp: Path
    exit_code: int | None
    out: str
    err: str


def _write_files(case: Case, tmp: Path) -> None:
    tmp.mkdir()
    for name, text in case.files.items():
        (tmp / name).write_text(text.replace("{tmp}", str(tmp)))


async def _run(case: Case, tmp: Path) -> Outcome:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STOCKWIRE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stockwire",
        *(a.replace("{tmp}", str(tmp)) for a in case.argv),
        env=clean | case.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        out, err = await process.communicate()
    return Outcome(tmp, process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("cli")
    for name, case in CASES.items():
        _write_files(case, base / name)

    async def run_all() -> list[Outcome]:
        return await asyncio.gather(*(_run(c, base / name) for name, c in CASES.items()))

    return dict(zip(CASES, asyncio.run(run_all()), strict=True))


@pytest.mark.parametrize("name", CASES)
def test_a_mistake_is_named_without_a_traceback(name: str, outcomes: dict[str, Outcome]) -> None:
    case, got = CASES[name], outcomes[name]
    text = got.out if "--help" in case.argv else got.err
    assert "Traceback" not in got.err
    assert got.exit_code == case.exit_code, got.err
    for part in case.says:
        assert part.replace("{tmp}", str(got.tmp)) in text, text
    for part in case.never:
        assert part not in text, text
