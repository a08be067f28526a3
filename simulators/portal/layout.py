"""Where a dock door's antennas are and where they look.

Coordinates in metres: x across the door (negative = outside, the yard/truck side; positive =
inside, the warehouse), y along the wall (the door's centre at y = 0; the neighbour door at
y = +door_spacing_m), z up from the floor.
"""

import math
from dataclasses import dataclass
from typing import Literal

Zone = Literal["outside", "inside"]


@dataclass(frozen=True, slots=True)
class Antenna:
    port: int  # reader port, 1-based
    zone: Zone
    x_m: float
    y_m: float
    z_m: float
    aim: tuple[float, float, float]  # unit vector of the boresight


@dataclass(frozen=True, slots=True)
class PortalLayout:
    """Which ports face outside and inside, and the frame they are mounted on.

    Each zone's ports alternate between the door's two jambs (first port on the -y jamb),
    mounted `antenna_x_m` off the wall on their zone's side and aimed at a point `aim_x_m`
    out on the door's axis, so each zone mostly sees loads on its own side.
    """

    outside_ports: tuple[int, ...] = (1, 2)
    inside_ports: tuple[int, ...] = (3, 4)
    jamb_y_m: float = 1.7  # half the distance between the two antenna masts
    antenna_x_m: float = 0.4
    antenna_z_m: float = 1.5
    aim_x_m: float = 2.5
    aim_z_m: float = 0.8
    field_half_m: float = 8.0  # a load this far from the wall is out of the read field
    door_spacing_m: float = 4.0  # centre to centre, to the neighbour door

    def __post_init__(self) -> None:
        ports = self.outside_ports + self.inside_ports
        if not self.outside_ports or not self.inside_ports:
            raise ValueError("a portal needs ports facing outside and ports facing inside")
        if len(set(ports)) != len(ports) or min(ports) < 1:
            raise ValueError(f"ports must be distinct and >= 1, got {ports}")

    @property
    def ports(self) -> tuple[int, ...]:
        return self.outside_ports + self.inside_ports

    def antennas(self) -> tuple[Antenna, ...]:
        outside = [self._antenna(p, "outside", n) for n, p in enumerate(self.outside_ports)]
        inside = [self._antenna(p, "inside", n) for n, p in enumerate(self.inside_ports)]
        return (*outside, *inside)

    def zone_of(self, port: int) -> Zone | None:
        if port in self.outside_ports:
            return "outside"
        return "inside" if port in self.inside_ports else None

    def _antenna(self, port: int, zone: Zone, n: int) -> Antenna:
        sx = -1.0 if zone == "outside" else 1.0
        y = -self.jamb_y_m if n % 2 == 0 else self.jamb_y_m
        x = sx * self.antenna_x_m
        dx, dy, dz = sx * self.aim_x_m - x, -y, self.aim_z_m - self.antenna_z_m
        norm = math.sqrt(dx * dx + dy * dy + dz * dz)
        return Antenna(port, zone, x, y, self.antenna_z_m, (dx / norm, dy / norm, dz / norm))
