"""Dock-door portals: an LLRP reader (source) feeding a PortalRecognizer.

The device's `profile` is the reader model, its `portal` the portal layout and recognizer
parameters, its `location` the dock door the loads cross.
"""

from collections.abc import Mapping
from typing import Protocol

from device_profiles.portal import PortalProfile
from device_profiles.rfid import RfidReaderProfile
from edge_agent.devices import device_profile, tcp_endpoint
from edge_agent.recognizers.base import Clock
from edge_agent.recognizers.portal import PortalRecognizer
from edge_agent.sources.rfid_llrp import RfidLlrpSource
from stockwire.errors import ConfigError


class RfidDevice(Protocol):
    """The fields of edge_agent.settings.DeviceConfig an RFID reader uses."""

    @property
    def id(self) -> str: ...
    @property
    def tcp(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def portal(self) -> str | None: ...
    @property
    def epc_map(self) -> Mapping[str, str]: ...


def build_rfid(
    device: RfidDevice, profile: RfidReaderProfile, clock: Clock
) -> tuple[RfidLlrpSource, PortalRecognizer]:
    """The reader's source and the portal's recognizer; the portal's ports must exist."""
    if device.portal is None or device.location is None:
        raise ConfigError(
            f"device {device.id!r}: an RFID reader needs portal (a portal profile) and location"
            " (the dock door)"
        )
    portal = device_profile(device.id, "portal", device.portal, PortalProfile)
    ports = {*portal.outside_ports, *portal.inside_ports, *portal.neighbour_ports}
    beyond = sorted(p for p in ports if p > profile.antenna_ports)
    if beyond:
        raise ConfigError(
            f"device {device.id!r}: portal {device.portal!r} uses port(s) {beyond}, the reader"
            f" {profile.name!r} has {profile.antenna_ports}"
        )
    recognizer = PortalRecognizer(device.id, portal, device.location, device.epc_map, clock)
    return build_rfid_source(device, profile, clock), recognizer


def build_rfid_source(
    device: RfidDevice, profile: RfidReaderProfile, clock: Clock
) -> RfidLlrpSource:
    """The reader at the device's `tcp = "host:port"` (an LLRP reader listens on 5084)."""
    if device.tcp is None:
        raise ConfigError(f'device {device.id!r}: an LLRP reader needs tcp = "host:port"')
    host, port = tcp_endpoint(device.id, device.tcp)
    return RfidLlrpSource(device.id, profile, host, port, clock=clock)
