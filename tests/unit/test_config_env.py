"""A bad value from the environment names its variable, not the TOML file it overrides."""

import os
from pathlib import Path

import pytest

from aggregator.settings import AggregatorSettings
from edge_agent.settings import load_edge_settings
from stockwire.config import load_settings
from stockwire.errors import ConfigError

EDGE = """
site = "site1"
edge = "dock-1"

[mqtt]
host = "127.0.0.1"
port = 1884
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith(("STOCKWIRE_EDGE_", "STOCKWIRE_AGG_")):
            monkeypatch.delenv(key)


def edge_file(tmp_path: Path, text: str = EDGE) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_edge_settings(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "STOCKWIRE_EDGE_TICK_MS",
            "fast",
            "  tick_ms (environment variable STOCKWIRE_EDGE_TICK_MS)",
        ),
        (
            "STOCKWIRE_EDGE_MQTT__PORT",
            "70000",
            "  mqtt.port (environment variable STOCKWIRE_EDGE_MQTT__PORT)",
        ),
        (
            "stockwire_edge_publisher__linger_ms",  # matched case-insensitively, named as set
            "-1",
            "  publisher.linger_ms (environment variable stockwire_edge_publisher__linger_ms)",
        ),
        (
            "STOCKWIRE_EDGE_DEVICES",
            '[{"id": "scan-1", "profile": "p"}]',
            "  devices.0 (environment variable STOCKWIRE_EDGE_DEVICES): Value error, device"
            " 'scan-1' needs exactly one of tcp or serial",
        ),
        (
            "STOCKWIRE_EDGE_MQTT__HOTS",
            "broker",
            "  mqtt.hots (environment variable STOCKWIRE_EDGE_MQTT__HOTS): Extra inputs",
        ),
    ],
)
def test_a_bad_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(variable, value)
    message = error(edge_file(tmp_path))
    assert message.startswith("environment variables: 1 error(s)\n")
    assert line in message
    assert "edge.toml" not in message


def test_file_and_environment_each_get_their_own_blame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKWIRE_EDGE_MQTT__PORT", "x")
    path = edge_file(tmp_path, EDGE.replace('host = "127.0.0.1"', "host = 5\nqos = 3"))
    message = error(path)
    assert message.startswith(f"{path} and environment variables: 3 error(s)\n")
    assert "  mqtt.port (environment variable STOCKWIRE_EDGE_MQTT__PORT): " in message
    assert "  mqtt.host: " in message  # from the file: no variable named


def test_a_variable_that_names_no_setting_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKWIRE_EDGE_MQTT_PASSWORD", "s3cret")  # one _ where __ is meant
    message = error(edge_file(tmp_path))
    assert message.startswith("environment variable STOCKWIRE_EDGE_MQTT_PASSWORD: names no ")
    assert "s3cret" not in message
    assert "mqtt, outbox" in message


def test_a_list_that_is_not_json_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKWIRE_EDGE_DEVICES", "scan-1")
    assert error(edge_file(tmp_path)).startswith(
        "environment variables: STOCKWIRE_EDGE_DEVICES: not valid JSON"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://u@127.0.0.1/ledger", "'mysql' is not supported: only sqlite and postgresql are"),
        ("ledger.db", "'ledger.db' is not a database URL"),
    ],
)
def test_an_unsupported_database_url_fails_at_load(tmp_path: Path, url: str, reason: str) -> None:
    path = tmp_path / "agg.toml"
    path.write_text(f'site = "site1"\ndatabase_url = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(AggregatorSettings, path)
    assert str(info.value).startswith(f"{path}: 1 error(s)\n  database_url: ")
    assert reason in str(info.value)
