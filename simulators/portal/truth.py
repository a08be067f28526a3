"""What really crossed a portal door (a pass) and what only looked like it might (distractors)."""

from dataclasses import dataclass
from typing import Literal

Direction = Literal["in", "out"]
ReturningKind = Literal["staged", "backout", "reversal"]  # into the field and back out
DistractorKind = Literal[ReturningKind, "neighbour-traffic"]
Side = Literal["outside", "inside"]


@dataclass(frozen=True, slots=True)
class TruePass:
    """One load crossing one door; what a perfect recognizer reports as one receipt/shipment."""

    door: str  # location code of the door (e.g. "DOCK-3")
    direction: Direction  # in = outside -> inside = receipt; out = shipment
    load: int  # tags of one load cross together; unique within a run
    epcs: tuple[str, ...]  # upper-case hex of every tag on the load (items + pallet)
    enter_s: float  # the load enters the read field
    leave_s: float  # the load has left the read field


@dataclass(frozen=True, slots=True)
class Distractor:
    """A load moving in or near the read field that must produce NO pass at `door`.

    `at` is the door where the load physically moves: the portal's own door for staged pallets,
    back-outs and reversals; the neighbour door for neighbour traffic (there it is a real
    crossing, in `direction`, just not one of this portal's).
    """

    kind: DistractorKind
    at: str
    side: Side  # the side it came from (and, except neighbour traffic, went back to)
    load: int
    epcs: tuple[str, ...]
    enter_s: float
    leave_s: float
    direction: Direction | None = None  # neighbour traffic only
