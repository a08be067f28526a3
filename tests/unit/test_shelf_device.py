"""The shelf device builder: transport, shelf profile and recognizer from a device config."""

from datetime import UTC, datetime

import pytest

from device_profiles import load_profile_of
from device_profiles.weighing import WeighingProfile
from edge_agent.devices.shelf import build_shelf
from edge_agent.recognizers.weight import WeightRecognizer
from edge_agent.registry import build_device
from edge_agent.settings import DeviceConfig, LaneConfig
from edge_agent.sources.modbus_shelf import ModbusRtu, ModbusShelfSource, ModbusTcp
from stockwire.errors import ConfigError

T0 = datetime(2026, 11, 29, tzinfo=UTC)
LANE = LaneConfig(
    id="bolts", location="A-10-01", sku="BOLT-M8", unit_weight_g=48.5, cells=[{"unit": 1}]
)


def shelf(**transport: str) -> DeviceConfig:
    return DeviceConfig(id="shelf-1", profile="laumas-w100", lanes=[LANE], **transport)


def build(device: DeviceConfig) -> tuple[ModbusShelfSource, WeightRecognizer]:
    source, recognizer = build_device(device, lambda: T0)  # through the registry
    assert isinstance(source, ModbusShelfSource)
    assert isinstance(recognizer, WeightRecognizer)
    return source, recognizer


def test_rtu_on_a_serial_port_with_the_profile_line_settings() -> None:
    source, recognizer = build(shelf(serial="/dev/ttyUSB1"))
    profile = load_profile_of("laumas-w100", WeighingProfile)
    assert source.device == recognizer.device == "shelf-1"
    assert source.transport == ModbusRtu("/dev/ttyUSB1", profile.serial)
    assert source.poll_interval_ms == 100  # the default shelf profile: load-cell-shelf
    assert recognizer.shelf.name == "load-cell-shelf"


def test_tcp_reaches_a_gateway_in_front_of_rtu_transmitters() -> None:
    source, _ = build(shelf(tcp="192.168.10.40:502"))
    assert source.transport == ModbusTcp("192.168.10.40", 502)


def test_a_tcp_only_model_on_a_serial_port_is_refused() -> None:
    profile = load_profile_of("laumas-w100", WeighingProfile).model_copy(
        update={"transports": ("tcp",)}
    )
    with pytest.raises(ConfigError, match=r"shelf-1.*no RS-485 RTU"):
        build_shelf(shelf(serial="/dev/ttyUSB1"), profile, lambda: T0)


def test_a_shelf_profile_of_another_kind_is_refused() -> None:
    device = shelf(tcp="127.0.0.1:502").model_copy(update={"shelf": "dock-door-portal"})
    with pytest.raises(ConfigError, match=r"^device 'shelf-1': shelf: .*ShelfProfile"):
        build_device(device, lambda: T0)


def test_a_shelf_without_lanes_is_refused() -> None:
    device = DeviceConfig(id="shelf-1", profile="laumas-w100", tcp="127.0.0.1:502")
    with pytest.raises(ConfigError, match="lane"):
        build_device(device, lambda: T0)
