"""Device kinds -> builders of (Source, Recognizer). Adding a kind = one line here.

Builders are imported lazily, so an edge only imports the device libraries it uses.
"""

import importlib
from collections.abc import Callable
from typing import Any, cast

from edge_agent.recognizers.base import Clock, Recognizer
from edge_agent.settings import DeviceConfig
from edge_agent.sources.base import Source
from stockwire.errors import ConfigError

Builder = Callable[[DeviceConfig, Any, Clock], tuple[Source, Recognizer]]

BUILDERS: dict[str, str] = {
    "scanner": "edge_agent.devices.scanner:build_scanner",
    "rfid-reader": "edge_agent.devices.rfid:build_rfid",
    "weighing-transmitter": "edge_agent.devices.shelf:build_shelf",
}


def builder(kind: str) -> Builder:
    target = BUILDERS.get(kind)
    if target is None:
        raise ConfigError(f"unknown device kind {kind!r} (known: {', '.join(sorted(BUILDERS))})")
    module, name = target.split(":")
    return cast(Builder, getattr(importlib.import_module(module), name))


def build_device(device: DeviceConfig, clock: Clock) -> tuple[Source, Recognizer]:
    """Load the device's profile and build its source and recognizer."""
    from device_profiles.errors import ProfileError
    from device_profiles.loader import load_profile

    try:
        profile = load_profile(device.profile)
    except ProfileError as e:
        raise ConfigError(f"device {device.id!r}: profile: {e}") from None
    try:
        build = builder(profile.kind)
    except ConfigError as e:
        raise ConfigError(f"device {device.id!r} (profile {device.profile!r}): {e}") from None
    return build(device, profile, clock)
