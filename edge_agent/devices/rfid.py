"""LLRP RFID readers: the source half of a dock-door portal device.

The registry entry ("rfid-reader": source + PortalRecognizer) is added where the portal
recognizer lands; this builds the source from the device config and the reader profile.
"""

from typing import Protocol

from device_profiles.rfid import RfidReaderProfile
from edge_agent.recognizers.base import Clock
from edge_agent.sources.rfid_llrp import RfidLlrpSource
from stockwire.errors import ConfigError


class RfidDevice(Protocol):
    """The fields of edge_agent.settings.DeviceConfig an RFID reader uses."""

    @property
    def id(self) -> str: ...
    @property
    def tcp(self) -> str | None: ...


def build_rfid_source(
    device: RfidDevice, profile: RfidReaderProfile, clock: Clock
) -> RfidLlrpSource:
    """The reader at the device's `tcp = "host:port"` (an LLRP reader listens on 5084)."""
    if device.tcp is None:
        raise ConfigError(f'device {device.id!r}: an LLRP reader needs tcp = "host:port"')
    host, _, port = device.tcp.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"device {device.id!r}: tcp {device.tcp!r} is not host:port")
    return RfidLlrpSource(device.id, profile, host, int(port), clock=clock)
