"""Portals at doors, and loads moving through doors, rendered onto every portal that sees them.

A load moving through a door is read by the portal at that door and, weakly, by any portal
whose neighbour that door is (at `door_spacing_m` along the wall, behind `neighbour_isolation_db`).
"""

import random
from dataclasses import dataclass
from itertools import starmap

from simulators.portal.layout import PortalLayout
from simulators.portal.motion import Path
from simulators.portal.noise import NoiseLevel
from simulators.portal.radio import RadioModel
from simulators.portal.render import Read, Scene, render
from simulators.portal.tags import PlacedTag
from simulators.sightings import Sighting


@dataclass(frozen=True, slots=True)
class Portal:
    id: str
    door: str  # location code
    layout: PortalLayout
    radio: RadioModel
    noise: NoiseLevel
    neighbour: str | None = None  # location code of the next door along the wall


class World:
    def __init__(self, portals: list[Portal]) -> None:
        self._scenes: dict[str, list[tuple[str, Scene]]] = {}
        self._reads: dict[str, list[Read]] = {p.id: [] for p in portals}
        for p in portals:
            antennas = p.layout.antennas()
            self._add(p.door, p.id, Scene(antennas, p.radio, p.noise))
            if p.neighbour is not None:
                far = Scene(
                    antennas,
                    p.radio,
                    p.noise,
                    p.layout.door_spacing_m,
                    p.noise.neighbour_isolation_db,
                )
                self._add(p.neighbour, p.id, far)

    def _add(self, door: str, portal_id: str, scene: Scene) -> None:
        self._scenes.setdefault(door, []).append((portal_id, scene))

    def move(self, door: str, path: Path, tags: list[PlacedTag], rng: random.Random) -> None:
        """The load with `tags` follows `path` through `door`; every portal in reach reads it."""
        for portal_id, scene in self._scenes.get(door, []):
            self._reads[portal_id] += render(tags, path, scene, rng)

    def sightings(self, portal_id: str) -> tuple[Sighting, ...]:
        """Time-sorted; the reads are consumed chunk by chunk to keep the peak memory down."""
        reads = self._reads[portal_id]
        reads.sort(key=_time, reverse=True)
        out: list[Sighting] = []
        while reads:
            chunk = reads[-_CHUNK:]
            del reads[-_CHUNK:]
            out.extend(starmap(Sighting, reversed(chunk)))
        return tuple(out)


_CHUNK = 1 << 16


def _time(read: Read) -> float:
    return read[0]


def placement_noise(portals: list[Portal], door: str) -> NoiseLevel:
    """How a load's tags sit is the load's own business; take the noise of the door's portal."""
    for p in portals:
        if p.door == door:
            return p.noise
    for p in portals:
        if p.neighbour == door:
            return p.noise
    return NoiseLevel()
