"""Which fault, if any, a unit of the shelf server is in at a moment of the server's clock.

The faults themselves are the scenario's (simulators/shelf/faults.py); this module only checks
them (a server refuses what it cannot enact) and answers "what now". A fault is active in
[at_s, at_s + for_s); when several overlap on one unit the strongest wins:
absent > silent > bad-crc > exception > slow.
"""

import math
from collections.abc import Iterable

from simulators.shelf.faults import ShelfFault

FAULT_KINDS = ("absent", "silent", "bad-crc", "exception", "slow")  # strongest first
DELAY_MS_MAX = 60_000
FAULTS_MAX = 10_000


class FaultError(ValueError):
    """A fault the server cannot enact; the message names the fault and the field."""


def check_fault(fault: ShelfFault, units: Iterable[int]) -> None:
    where = f"fault {fault.kind!r} on unit {fault.unit} at {fault.at_s} s"
    if fault.kind not in FAULT_KINDS:
        raise FaultError(f"{where}: kind must be one of {', '.join(FAULT_KINDS)}")
    if fault.unit not in set(units):
        raise FaultError(f"{where}: unit: no such unit on this bus")
    if not math.isfinite(fault.at_s) or fault.at_s < 0:
        raise FaultError(f"{where}: at_s must be a time >= 0")
    if not fault.for_s > 0:  # inf is fine: until removed
        raise FaultError(f"{where}: for_s must be > 0")
    if not 0 <= fault.delay_ms <= DELAY_MS_MAX:
        raise FaultError(f"{where}: delay_ms must be 0..{DELAY_MS_MAX}")
    if fault.kind == "slow" and fault.delay_ms == 0:
        raise FaultError(f"{where}: delay_ms must be > 0 for a slow fault")
    if not 1 <= fault.exception_code <= 0xFF:
        raise FaultError(f"{where}: exception_code must be 1..255")


class FaultPlan:
    """The faults of one server; tests add and remove them while it runs."""

    def __init__(self, units: Iterable[int], faults: Iterable[ShelfFault] = ()) -> None:
        self.units = sorted(units)
        self._faults: list[ShelfFault] = []
        for fault in faults:
            self.add(fault)

    def add(self, fault: ShelfFault) -> None:
        check_fault(fault, self.units)
        if len(self._faults) >= FAULTS_MAX:
            raise FaultError(f"more than {FAULTS_MAX} faults on one server")
        self._faults.append(fault)

    def remove(self, fault: ShelfFault) -> bool:
        """Stop `fault` now; False if it was not there."""
        if fault in self._faults:
            self._faults.remove(fault)
            return True
        return False

    def active(self, unit: int, t_s: float) -> ShelfFault | None:
        now = [f for f in self._faults if f.unit == unit and f.at_s <= t_s < f.at_s + f.for_s]
        return min(now, key=lambda f: FAULT_KINDS.index(f.kind), default=None)

    def absent(self, t_s: float) -> set[int]:
        """The units that are gone from the bus at `t_s`."""
        return {u for u in self.units if (f := self.active(u, t_s)) and f.kind == "absent"}
