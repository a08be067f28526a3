"""How a load moves through a door: straight legs along x at a constant speed, or standing.

A path starts where the load enters the read field (|x| = field_half_m) and ends where it
has left it; `enter_s`/`leave_s` are those two instants.
"""

from dataclasses import dataclass

from simulators.portal.truth import ReturningKind, Side

STAGE_X_M = 2.0  # where a staged pallet is set down, off the wall on its side
DOORWAY_X_M = 0.6  # a back-out stops the load's centre this far short of the door plane
REVERSE_SPEED_FACTOR = 0.7  # reversing forklifts are slower


@dataclass(frozen=True, slots=True)
class Leg:
    t0_s: float
    t1_s: float
    x0_m: float
    x1_m: float


@dataclass(frozen=True, slots=True)
class Path:
    legs: tuple[Leg, ...]
    y_m: float  # lateral offset of the load's centre from the door's axis
    z_m: float = 0.8  # height of the load's centre

    @property
    def enter_s(self) -> float:
        return self.legs[0].t0_s

    @property
    def leave_s(self) -> float:
        return self.legs[-1].t1_s

    def x_at(self, t_s: float) -> float:
        for leg in self.legs:
            if t_s <= leg.t1_s:
                if leg.t1_s <= leg.t0_s:
                    return leg.x1_m
                f = (t_s - leg.t0_s) / (leg.t1_s - leg.t0_s)
                return leg.x0_m + f * (leg.x1_m - leg.x0_m)
        return self.legs[-1].x1_m


class _Builder:
    def __init__(self, t_s: float, x_m: float) -> None:
        self.t_s, self.x_m = t_s, x_m
        self.legs: list[Leg] = []

    def move(self, x_m: float, speed_m_per_s: float) -> "_Builder":
        dt = abs(x_m - self.x_m) / speed_m_per_s
        self.legs.append(Leg(self.t_s, self.t_s + dt, self.x_m, x_m))
        self.t_s, self.x_m = self.t_s + dt, x_m
        return self

    def stand(self, for_s: float) -> "_Builder":
        if for_s > 0:
            self.legs.append(Leg(self.t_s, self.t_s + for_s, self.x_m, self.x_m))
            self.t_s += for_s
        return self

    def path(self, y_m: float) -> Path:
        return Path(tuple(self.legs), y_m)


def _sign(side: Side) -> float:
    return -1.0 if side == "outside" else 1.0


def crossing(
    side: Side,
    at_s: float,
    speed_m_per_s: float,
    field_half_m: float,
    y_m: float,
    stand_s: float = 0.0,
) -> Path:
    """From `side` through the door to the other side, optionally standing staged first."""
    s = _sign(side)
    b = _Builder(at_s, s * field_half_m)
    if stand_s > 0:
        b.move(s * STAGE_X_M, speed_m_per_s).stand(stand_s)
    return b.move(-s * field_half_m, speed_m_per_s).path(y_m)


def returning(
    kind: ReturningKind,
    side: Side,
    at_s: float,
    speed_m_per_s: float,
    field_half_m: float,
    y_m: float,
    hold_s: float,
    depth_m: float = 0.0,
) -> Path:
    """Into the field from `side`, hold at the turning point, back out the way it came.

    staged: set down at STAGE_X_M and left for `hold_s`; backout: stops DOORWAY_X_M short
    of the door plane; reversal: reaches the door plane (`depth_m` past it) and reverses.
    """
    s = _sign(side)
    turn = {"staged": s * STAGE_X_M, "backout": s * DOORWAY_X_M, "reversal": -s * depth_m}[kind]
    back = speed_m_per_s * (1.0 if kind == "staged" else REVERSE_SPEED_FACTOR)
    b = _Builder(at_s, s * field_half_m).move(turn, speed_m_per_s).stand(hold_s)
    return b.move(s * field_half_m, back).path(y_m)
