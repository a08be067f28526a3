"""Validated TOML profiles of real devices and the pydantic schema that loads them."""

from device_profiles.errors import ProfileError, UnknownProfileError
from device_profiles.loader import known_profiles, load_profile, load_profile_of
from device_profiles.portal import PortalProfile
from device_profiles.rfid import RfidReaderProfile
from device_profiles.schema import Profile, ScannerProfile
from device_profiles.serial import SerialSettings

__all__ = [
    "PortalProfile",
    "Profile",
    "ProfileError",
    "RfidReaderProfile",
    "ScannerProfile",
    "SerialSettings",
    "UnknownProfileError",
    "known_profiles",
    "load_profile",
    "load_profile_of",
]
