"""One builder per device kind: a (Source, Recognizer) pair from a device config and its profile."""

from pathlib import Path
from typing import TypeVar

from device_profiles.errors import ProfileError
from device_profiles.loader import load_profile_of
from device_profiles.portal import PortalProfile
from device_profiles.shelf import ShelfProfile
from stockwire.errors import ConfigError

P = TypeVar("P", PortalProfile, ShelfProfile)


def device_profile(device: str, field: str, name_or_path: str | Path, kind: type[P]) -> P:
    """A profile a device names in `field`; a ConfigError naming the device and the field."""
    try:
        return load_profile_of(name_or_path, kind)
    except ProfileError as e:
        raise ConfigError(f"device {device!r}: {field}: {e}") from None


def tcp_endpoint(device: str, tcp: str) -> tuple[str, int]:
    """(host, port) of a device's `tcp = "host:port"`."""
    host, _, port = tcp.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"device {device!r}: tcp {tcp!r} is not host:port")
    return host, int(port)
