"""Barcode scanners: a TCP or serial line source feeding a ScanRecognizer."""

from typing import Protocol

from device_profiles.schema import ScannerProfile
from edge_agent.devices import tcp_endpoint
from edge_agent.recognizers.base import Clock
from edge_agent.recognizers.scan import ScanRecognizer
from edge_agent.sources.base import Source
from edge_agent.sources.scanner_serial import ScannerSerialSource
from edge_agent.sources.scanner_tcp import ScannerTcpSource
from stockwire.errors import ConfigError


class ScannerDevice(Protocol):
    """The fields of edge_agent.settings.DeviceConfig a scanner uses."""

    @property
    def id(self) -> str: ...
    @property
    def tcp(self) -> str | None: ...
    @property
    def serial(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def duplicate_window_ms(self) -> int | None: ...


def build_scanner(
    device: ScannerDevice, profile: ScannerProfile, clock: Clock
) -> tuple[Source, ScanRecognizer]:
    """The device's transport (tcp or serial) decides the source; the profile frames its lines."""
    if device.duplicate_window_ms is not None:
        profile = ScannerProfile.model_validate(
            {**profile.model_dump(), "duplicate_window_ms": device.duplicate_window_ms}
        )
    recognizer = ScanRecognizer(device.id, profile, clock, device.location)
    return _source(device, profile), recognizer


def _source(device: ScannerDevice, profile: ScannerProfile) -> Source:
    if device.tcp is not None:
        host, port = tcp_endpoint(device.id, device.tcp)
        return ScannerTcpSource(device.id, profile, host, port)
    if device.serial is not None:
        return ScannerSerialSource(device.id, profile, device.serial)
    raise ConfigError(f"device {device.id!r} needs tcp or serial")
