"""Validated device profiles, one model per device kind, chosen by `kind`.

A new device kind is one more model in the `Profile` union.
"""

import codecs
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from device_profiles.base import ProfileModel as _ProfileModel
from device_profiles.base import ProfileName
from device_profiles.portal import PortalProfile
from device_profiles.rfid import RfidReaderProfile
from device_profiles.serial import SerialSettings
from device_profiles.shelf import ShelfProfile
from device_profiles.weighing import WeighingProfile

DEFAULT_SKU_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{1,63}$"


class ScannerProfile(_ProfileModel):
    """How one model of barcode scanner frames what it sends."""

    kind: Literal["scanner"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    transport: Literal["tcp", "serial"]
    symbology_ids: bool = Field(
        default=False, description="the scanner prefixes each scan with an AIM id like ]C1"
    )
    prefix: str = Field(default="", max_length=16, description="stripped from each line")
    suffix: str = Field(default="", max_length=16, description="stripped before the terminator")
    terminator: Literal["\r\n", "\r", "\n"] = "\r\n"
    encoding: str = "utf-8"
    max_line_bytes: int = Field(default=4096, ge=16, le=65536)
    serial: SerialSettings = SerialSettings()
    duplicate_window_ms: int = Field(default=1000, ge=0, le=60_000)
    sku_pattern: str = DEFAULT_SKU_PATTERN

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        return encoding

    @field_validator("sku_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"sku_pattern does not compile: {exc}") from None
        return pattern


# Each device kind is one member.
Profile = Annotated[
    ScannerProfile | RfidReaderProfile | PortalProfile | WeighingProfile | ShelfProfile,
    Field(discriminator="kind"),
]
