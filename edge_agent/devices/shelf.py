"""Load-cell shelves: a Modbus bus of weighing transmitters (source) feeding a WeightRecognizer.

The device's `profile` is the transmitter model (every unit on the bus is one), its `shelf` the
shelf profile (poll rate, stability, tolerances; "load-cell-shelf" when not set), its `lanes`
which cells carry which item. `tcp = "host:port"` reaches a Modbus TCP transmitter or gateway;
`serial = "/dev/ttyUSB0"` an RS-485 RTU bus with the profile's serial settings. The source
refuses lanes on channels the model lacks, naming the device, lane and cell.
"""

from collections.abc import Sequence
from typing import Protocol

from device_profiles.shelf import ShelfProfile
from device_profiles.weighing import WeighingProfile
from edge_agent.devices import device_profile, tcp_endpoint
from edge_agent.recognizers.base import Clock
from edge_agent.recognizers.weight import WeightRecognizer
from edge_agent.settings import LaneConfig
from edge_agent.sources.modbus_shelf import ModbusRtu, ModbusShelfSource, ModbusTcp, Transport
from stockwire.errors import ConfigError

DEFAULT_SHELF = "load-cell-shelf"


class ShelfDevice(Protocol):
    """The fields of edge_agent.settings.DeviceConfig a shelf uses."""

    @property
    def id(self) -> str: ...
    @property
    def tcp(self) -> str | None: ...
    @property
    def serial(self) -> str | None: ...
    @property
    def shelf(self) -> str | None: ...
    @property
    def lanes(self) -> Sequence[LaneConfig]: ...


def build_shelf(
    device: ShelfDevice, profile: WeighingProfile, clock: Clock
) -> tuple[ModbusShelfSource, WeightRecognizer]:
    shelf = device_profile(device.id, "shelf", device.shelf or DEFAULT_SHELF, ShelfProfile)
    source = ModbusShelfSource(
        device.id,
        profile,
        device.lanes,
        _transport(device, profile),
        poll_interval_ms=shelf.poll_interval_ms,
        clock=clock,
    )
    return source, WeightRecognizer(device.id, shelf, device.lanes, clock)


def _transport(device: ShelfDevice, profile: WeighingProfile) -> Transport:
    if device.tcp is not None:  # the transmitter itself, or an RS-485 gateway in front of it
        return ModbusTcp(*tcp_endpoint(device.id, device.tcp))
    assert device.serial is not None  # DeviceConfig demands one of tcp or serial
    if "rtu" not in profile.transports:
        raise ConfigError(f"device {device.id!r}: a {profile.name!r} has no RS-485 RTU")
    return ModbusRtu(device.serial, profile.serial)
