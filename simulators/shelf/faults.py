"""Faults of a shelf's Modbus devices, as a scenario describes them; the server enacts them.

slow: answers `delay_ms` late; silent: does not answer (the client times out); exception:
answers with Modbus exception `exception_code`; bad-crc: RTU frames with a corrupt CRC;
absent: the device is gone from the bus (TCP: connections refused or dropped) and comes back.
Each lasts `for_s` from `at_s` (seconds since the simulator's start) on device `unit`.
"""

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["slow", "silent", "exception", "bad-crc", "absent"]


@dataclass(frozen=True, slots=True)
class ShelfFault:
    at_s: float
    kind: FaultKind
    unit: int
    for_s: float
    delay_ms: int = 0
    exception_code: int = 6  # SERVER DEVICE BUSY
