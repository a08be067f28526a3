"""What an RFID portal's physics hands to the LLRP reader simulator: timed tag sightings.

The physics (simulators/portal) decides which tag each antenna reads, when, how strongly and
at which RF phase; the reader (simulators/llrp) only folds sightings into RO_ACCESS_REPORTs per
the ROSpec its client configured. Neither knows how the other works.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sighting:
    """One read of one tag by one antenna; `at_s` is seconds from the run's start at speed 1."""

    at_s: float
    epc: bytes  # the EPC bank's EPC (96 bits for SGTIN-96/SSCC-96; other lengths happen)
    antenna: int  # reader port, 1-based
    rssi_dbm: float
    phase_deg: float | None = None  # 0..360 where the reader model reports RF phase
