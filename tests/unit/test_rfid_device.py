from datetime import UTC, datetime

import pytest

from device_profiles import RfidReaderProfile, load_profile_of
from edge_agent.devices.rfid import build_rfid_source
from edge_agent.settings import DeviceConfig
from edge_agent.sources.base import Source
from stockwire.errors import ConfigError

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def reader() -> RfidReaderProfile:
    return load_profile_of("zebra-fx9600", RfidReaderProfile)


def test_the_source_reads_the_reader_at_tcp() -> None:
    device = DeviceConfig(id="door-3", profile="zebra-fx9600", tcp="10.0.3.20:5084")
    source = build_rfid_source(device, reader(), lambda: T0)
    as_source: Source = source  # the agent's Source protocol
    assert as_source.status().kind == "rfid"
    assert (source.device, source.host, source.port, source.kind) == (
        "door-3",
        "10.0.3.20",
        5084,
        "rfid",
    )
    assert source.clock() == T0


def test_a_reader_on_a_serial_port_is_refused() -> None:
    device = DeviceConfig(id="door-3", profile="zebra-fx9600", serial="/dev/ttyUSB0")
    with pytest.raises(ConfigError, match="needs tcp"):
        build_rfid_source(device, reader(), lambda: T0)
