"""What the Modbus server asks the physics: one weighing channel's state at a moment.

The server (simulators/shelf/server.py) encodes a CellReading into a transmitter's registers
by its profile; the world (simulators/shelf/world.py) computes it from lane physics. Neither
knows the other.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CellReading:
    grams: float  # what the transmitter shows (noise, transients, drift included)
    stable: bool  # its motion detector: the STABLE bit
    error: bool = False  # a load-cell or converter error the transmitter reports


class CellSource(Protocol):
    def reading(self, unit: int, channel: int, t_s: float) -> CellReading:
        """The channel's reading at `t_s` seconds since the run started (non-decreasing)."""
        ...

    def cells(self) -> list[tuple[int, int]]:
        """Every (unit, channel) this source has."""
        ...
