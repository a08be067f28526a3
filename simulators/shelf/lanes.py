"""What a shelf world is built from: its lanes (one SKU each, on one or more load cells) and the
time-ordered physical changes on them."""

from dataclasses import dataclass
from typing import Literal

ChangeKind = Literal["pieces", "foreign", "hand-rest", "knock"]


@dataclass(frozen=True, slots=True)
class CellSpec:
    """One load cell under a lane, read as channel `channel` of device `unit`; it carries
    `share` of the lane's load (a lane's shares sum to 1)."""

    unit: int
    channel: int = 1
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class LaneSpec:
    id: str
    sku: str
    unit_weight_g: float  # nominal
    cells: tuple[CellSpec, ...]
    location: str = ""
    piece_cv: float = 0.01  # each piece weighs Normal(nominal, cv * nominal)
    initial_pieces: int = 0  # there since long before the run (settled, crept)
    tare_g: float = 0.0  # the empty lane as the transmitter reads it (zeroed: 0)

    def __post_init__(self) -> None:
        where = f"lane {self.id!r}"
        if not self.cells:
            raise ValueError(f"{where}: no cells")
        if self.unit_weight_g <= 0 or self.piece_cv < 0 or self.initial_pieces < 0:
            raise ValueError(f"{where}: unit_weight_g > 0, piece_cv >= 0, initial_pieces >= 0")
        shares = [c.share for c in self.cells]
        if min(shares) <= 0 or abs(sum(shares) - 1) > 1e-9:
            raise ValueError(f"{where}: cell shares must be > 0 and sum to 1")
        if len({(c.unit, c.channel) for c in self.cells}) != len(self.cells):
            raise ValueError(f"{where}: a cell is listed twice")


@dataclass(frozen=True, slots=True)
class Pieces:
    """`delta` pieces of the lane's own item put (> 0) or taken (< 0) in one go."""

    at_s: float
    lane: str
    delta: int
    kind: Literal["pieces"] = "pieces"


@dataclass(frozen=True, slots=True)
class Foreign:
    """Pieces of another item put in the lane (> 0) or taken out of it again (< 0)."""

    at_s: float
    lane: str
    delta: int
    unit_weight_g: float
    piece_cv: float = 0.01
    sku: str = ""
    kind: Literal["foreign"] = "foreign"


@dataclass(frozen=True, slots=True)
class HandRest:
    """A hand leans on the lane with `grams` (plus tremor) for `for_s`, then lifts."""

    at_s: float
    lane: str
    grams: float
    for_s: float
    kind: Literal["hand-rest"] = "hand-rest"


@dataclass(frozen=True, slots=True)
class Knock:
    """The lane is knocked: an impulse that rings out; nothing changes."""

    at_s: float
    lane: str
    kind: Literal["knock"] = "knock"


Change = Pieces | Foreign | HandRest | Knock


@dataclass(frozen=True, slots=True)
class ChangeTruth:
    """What a change really did to a lane (the world's ground truth for it)."""

    index: int  # in the world's change list
    at_s: float  # the hand starts: the load steps a little later, during the contact
    lane: str
    kind: ChangeKind
    pieces: int  # of the lane's own item: +put, -taken (0 for foreign, hand rest, knock)
    grams: float  # the true change of the load: real piece weights, not nominal
    step_s: float  # when the load steps (== at_s for hand rest and knock)
    settled_s: float  # when the lane reads within noise again
