"""Serial line settings a profile gives its device (scanners, RS-485 weighing buses)."""

from typing import Literal

from pydantic import field_validator

from device_profiles.base import ProfileModel

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class SerialSettings(ProfileModel):
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
