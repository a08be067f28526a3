"""The configs shipped in deploy/config must load as written (the README points people at them)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.settings import AggregatorSettings
from device_profiles.loader import load_profile
from edge_agent.registry import build_device
from edge_agent.settings import EdgeSettings
from stockwire.config import load_settings

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("STOCKWIRE_EDGE_", "STOCKWIRE_AGG_")):
            monkeypatch.delenv(name)


def test_edge_example_loads_and_names_real_profiles() -> None:
    settings = load_settings(EdgeSettings, CONFIG / "edge.example.toml")
    assert settings.edge == "dock-1"
    assert [d.id for d in settings.devices] == ["scanner-1", "scanner-2", "door-1", "shelf-a10"]
    kinds = [load_profile(device.profile).kind for device in settings.devices]
    assert kinds == ["scanner", "scanner", "rfid-reader", "weighing-transmitter"]
    for device in settings.devices:  # profiles, portal layout and epc_map all fit together
        source, _ = build_device(device, lambda: datetime.now(UTC))
        assert source.device == device.id
    assert (settings.mqtt.username, settings.mqtt.tls) == ("dock-1", True)  # a login by default
    assert settings.login_mismatch() is None


def test_aggregator_example_loads() -> None:
    settings = load_settings(AggregatorSettings, CONFIG / "aggregator.example.toml")
    assert settings.known_edges == ["dock-1"]
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert (settings.mqtt.username, settings.mqtt.tls) == ("aggregator", True)
    assert settings.site == load_settings(EdgeSettings, CONFIG / "edge.example.toml").site


def test_the_readme_first_try_overrides_point_the_examples_at_a_loopback_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The README's `export` lines (first try with `mosquitto -p 1883`) load as it says."""
    readme = (CONFIG.parents[1] / "README.md").read_text(encoding="utf-8")
    exports = [line for line in readme.splitlines() if line.startswith("export STOCKWIRE_")]
    assignments = [
        word.split("=", 1) for line in exports for word in line.removeprefix("export ").split()
    ]
    assert len(assignments) >= 8, "the README's first-try block is gone"
    for name, value in assignments:
        monkeypatch.setenv(name, value.replace("$PWD", str(tmp_path)))
    edge = load_settings(EdgeSettings, CONFIG / "edge.example.toml")
    aggregator = load_settings(AggregatorSettings, CONFIG / "aggregator.example.toml")
    for mqtt in (edge.mqtt, aggregator.mqtt):
        assert (mqtt.host, mqtt.port, mqtt.tls) == ("127.0.0.1", 1883, False)
    assert edge.outbox.path == tmp_path / "outbox.sqlite"
    assert aggregator.database_url == f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
