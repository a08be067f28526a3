from pathlib import Path

import pytest

from edge_agent.settings import EdgeSettings, load_edge_settings
from stockwire.errors import ConfigError

GOOD = """
site = "site1"
edge = "dock-1"

[mqtt]
host = "127.0.0.1"
port = 1884
username = "edge"
password = "s3cret"

[outbox]
path = "/tmp/x/outbox.sqlite"
rows_max = 500

[publisher]
batch_txns_max = 100

[[devices]]
id = "scan1"
profile = "generic-hid-scanner"
tcp = "127.0.0.1:9100"
location = "DOCK-1"

[[devices]]
id = "scan2"
profile = "profiles/other.toml"
serial = "/dev/ttyUSB0"
duplicate_window_ms = 300
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STOCKWIRE_EDGE_"):
            monkeypatch.delenv(key)


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    s = load_edge_settings(write(tmp_path, GOOD))
    assert (s.site, s.edge) == ("site1", "dock-1")
    assert s.mqtt.port == 1884
    assert s.mqtt.password is not None
    assert s.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.client_id == "edge"  # its username: brokers may enforce use_username_as_clientid
    assert s.outbox.rows_max == 500
    assert s.outbox.unsent_txns_max == 500
    assert s.publisher.batch_txns_max == 100
    assert s.publisher.linger_ms == 20
    assert s.publisher.inflight_batches_max == 4
    assert s.tick_ms == 200
    assert [d.id for d in s.devices] == ["scan1", "scan2"]
    assert s.devices[0].location == "DOCK-1"
    assert s.devices[1].serial == "/dev/ttyUSB0"
    assert s.devices[1].duplicate_window_ms == 300


def test_env_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKWIRE_EDGE_MQTT__PORT", "2883")
    monkeypatch.setenv("STOCKWIRE_EDGE_EDGE", "dock-2")
    s = load_edge_settings(write(tmp_path, GOOD))
    assert s.mqtt.port == 2883
    assert s.mqtt.host == "127.0.0.1"  # the rest of the section still comes from the file
    assert s.edge == "dock-2"


@pytest.mark.parametrize(
    ("change", "field_path"),
    [
        (("port = 1884", 'port = "not a port"'), "mqtt.port"),
        (('edge = "dock-1"', 'edge = "dock/1"'), "edge"),
        (("batch_txns_max = 100", "batch_txns_max = 5000"), "publisher.batch_txns_max"),
        (('tcp = "127.0.0.1:9100"', 'tcp = "nowhere"'), "devices.0.tcp"),
        (('serial = "/dev/ttyUSB0"', 'serial = "/dev/ttyUSB0"\ntcp = "h:1"'), "devices.1"),
        (('location = "DOCK-1"', 'location = "no spaces"'), "devices.0.location"),
        (("rows_max = 500", "rows_max = 500\nrow_max = 5"), "outbox.row_max"),
        (("rows_max = 500", "rows_max = 500\nunsent_txns_max = -1"), "outbox.unsent_txns_max"),
        (
            ('password = "s3cret"', 'password = "s3cret"\nca_file = "/nonexistent/ca.pem"'),
            "mqtt.ca_file",
        ),
    ],
)
def test_bad_file_names_the_file_and_field(
    tmp_path: Path, change: tuple[str, str], field_path: str
) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_edge_settings(path)
    message = str(info.value)
    assert str(path) in message
    assert f"  {field_path}" in message


def test_telemetry_defaults_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = load_edge_settings(write(tmp_path, GOOD)).telemetry
    assert (t.enabled, t.interval_s, t.lane_weight_interval_s) == (True, 10.0, 5.0)
    assert (t.queue_samples_max, t.batch_samples_max) == (10_000, 500)
    path = write(tmp_path, GOOD + "\n[telemetry]\ninterval_s = 30\nbatch_samples_max = 50\n")
    monkeypatch.setenv("STOCKWIRE_EDGE_TELEMETRY__ENABLED", "false")
    t = load_edge_settings(path).telemetry
    assert (t.enabled, t.interval_s, t.batch_samples_max) == (False, 30.0, 50)


@pytest.mark.parametrize(
    ("line", "field_path"),
    [
        ("batch_samples_max = 5001", "telemetry.batch_samples_max"),  # > SAMPLES_PER_BATCH_MAX
        ("queue_samples_max = 0", "telemetry.queue_samples_max"),
        ("interval_s = 0", "telemetry.interval_s"),
        ("lane_weight_interval_s = -1", "telemetry.lane_weight_interval_s"),
        ("rate_s = 1", "telemetry.rate_s"),
    ],
)
def test_bad_telemetry_settings_name_the_field(tmp_path: Path, line: str, field_path: str) -> None:
    with pytest.raises(ConfigError, match=rf"  {field_path}"):
        load_edge_settings(write(tmp_path, f"{GOOD}\n[telemetry]\n{line}\n"))


def test_device_needs_exactly_one_transport(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('tcp = "127.0.0.1:9100"\n', ""))
    with pytest.raises(ConfigError, match=r"devices\.0.*exactly one of tcp or serial"):
        load_edge_settings(path)


def test_device_ids_are_unique(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('id = "scan2"', 'id = "scan1"'))
    with pytest.raises(ConfigError, match="'scan1' appears more than once"):
        load_edge_settings(path)


def test_reconnect_bounds_are_ordered() -> None:
    with pytest.raises(ValueError, match="reconnect_min_s"):
        EdgeSettings(site="s", edge="e", publisher={"reconnect_min_s": 5, "reconnect_max_s": 1})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_edge_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_edge_settings(write(tmp_path, "site = "))


RFID = (
    GOOD
    + """
[[devices]]
id = "door-3"
profile = "impinj-speedway-r420"
tcp = "10.0.3.20:5084"
location = "DOCK-3"
portal = "dock-door-3"

[devices.epc_map]
"urn:epc:id:grai:0614141.12345.*" = "PALLET-BLUE"
"e2801160" = "TOTE-GREY"
"""
)


def test_an_rfid_reader_with_portal_and_epc_map(tmp_path: Path) -> None:
    s = load_edge_settings(write(tmp_path, RFID))
    reader = s.devices[2]
    assert (reader.tcp, reader.portal) == ("10.0.3.20:5084", "dock-door-3")
    assert reader.epc_map == {
        "urn:epc:id:grai:0614141.12345.*": "PALLET-BLUE",
        "E2801160": "TOTE-GREY",  # hex prefixes are kept upper-case
    }
    assert (s.devices[0].portal, s.devices[0].epc_map) == (None, {})  # scanners unchanged


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (('"e2801160"', '"xyz"'), "neither an EPC URI nor a hex prefix"),
        (('= "TOTE-GREY"', '= "has space"'), "devices.2.epc_map.e2801160"),
        (('portal = "dock-door-3"', 'portal = ""'), "devices.2.portal"),
        (('"e2801160" = "TOTE-GREY"', '"e2801160" = "A"\n"E2801160" = "B"'), "twice"),
    ],
)
def test_bad_rfid_device_config_names_the_field(
    tmp_path: Path, change: tuple[str, str], reason: str
) -> None:
    assert change[0] in RFID
    path = write(tmp_path, RFID.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_edge_settings(path)
    assert reason in str(info.value)
