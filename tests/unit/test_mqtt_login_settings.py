"""The [mqtt] section both programs share: login, client id, TLS."""

import os
import ssl
from pathlib import Path

import pytest

from aggregator.settings import AggregatorSettings
from edge_agent.settings import EdgeSettings
from stockwire.config import load_settings
from stockwire.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("STOCKWIRE_EDGE_", "STOCKWIRE_AGG_")):
            monkeypatch.delenv(name)


def edge(**mqtt: object) -> EdgeSettings:
    return EdgeSettings(site="s1", edge="dock-1", mqtt=mqtt)


def test_an_edge_with_a_password_logs_in_as_its_edge_id_which_is_its_client_id() -> None:
    settings = edge(password="pw")
    assert (settings.mqtt.username, settings.client_id) == ("dock-1", "dock-1")
    assert settings.login_mismatch() is None


def test_without_credentials_the_client_ids_name_site_and_edge() -> None:
    assert edge().client_id == "stockwire-edge-s1-dock-1"
    assert edge().mqtt.username is None
    assert AggregatorSettings(site="s1").mqtt.client_id == "stockwire-aggregator-s1"


def test_an_explicit_client_id_is_kept_and_filled_in() -> None:
    assert edge(password="pw", client_id="box-{edge}").client_id == "box-dock-1"
    agg = AggregatorSettings(site="s1", mqtt={"username": "agg-2", "client_id": "a-{site}"})
    assert agg.mqtt.client_id == "a-s1"


def test_the_aggregator_client_id_is_its_username() -> None:
    settings = AggregatorSettings(site="s1", mqtt={"username": "agg-2", "password": "pw"})
    assert settings.mqtt.client_id == "agg-2"
    assert settings.mqtt.password_text() == "pw"


def test_an_edge_logged_in_under_another_name_is_told_why_it_will_not_post() -> None:
    message = edge(username="dock-2", password="pw").login_mismatch()
    assert message is not None
    assert "'dock-2' is not the edge id 'dock-1'" in message


def test_ca_file_must_exist_and_needs_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    path = tmp_path / "edge.toml"
    path.write_text(f'site = "s1"\nedge = "e1"\n[mqtt]\nca_file = "{ca}"\ntls = true\n')
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file"):
        load_settings(EdgeSettings, path)
    ca.write_text("not read until a connection is made")
    path.write_text(f'site = "s1"\n[mqtt]\nca_file = "{ca}"\n')
    with pytest.raises(ConfigError, match="tls is false: set tls = true"):
        load_settings(AggregatorSettings, path)


def test_tls_verifies_the_broker_name_against_the_system_cas_by_default() -> None:
    assert edge().mqtt.tls_context() is None
    context = edge(tls=True).mqtt.tls_context()
    assert context is not None
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
