"""Validated device profiles, one model per device kind, chosen by `kind`.

A new device kind (shelf, ...) is one more model in the `Profile` union.
"""

import codecs
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from device_profiles.base import ProfileModel as _ProfileModel
from device_profiles.base import ProfileName
from device_profiles.portal import PortalProfile
from device_profiles.rfid import RfidReaderProfile

DEFAULT_SKU_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{1,63}$"
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class SerialSettings(_ProfileModel):
    baud: int = 9600
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False

    @field_validator("stopbits")
    @classmethod
    def _known_stopbits(cls, stopbits: float) -> float:
        if stopbits not in (1, 1.5, 2):
            raise ValueError(f"stopbits {stopbits} is not one of 1, 1.5, 2")
        return stopbits

    @field_validator("baud")
    @classmethod
    def _known_baud(cls, baud: int) -> int:
        if baud not in BAUD_RATES:
            raise ValueError(f"baud {baud} is not one of {', '.join(map(str, BAUD_RATES))}")
        return baud


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


# Each device kind is one member; shelf profiles join this union.
Profile = Annotated[ScannerProfile | RfidReaderProfile | PortalProfile, Field(discriminator="kind")]
