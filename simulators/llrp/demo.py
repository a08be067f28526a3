"""Built-in sightings for running the reader standalone: tagged loads crossing a dock door,
seen first by the outside antennas (1, 2), then by the inside ones (3, 4), RSSI peaking as
the load passes each pair and the RF phase turning with distance. Not physics: the portal
simulator (simulators/portal) is what scenarios use."""

import math
import random

from simulators.sightings import Sighting

OUTSIDE = (1, 2)
INSIDE = (3, 4)
CROSSING_S = 2.0  # a forklift at ~1.5 m/s through a 3 m read field
READS_PER_S = 8  # per tag and antenna while in the field
WAVELENGTH_M = 0.33
FIELD_M = 1.5  # an antenna reads tags nearer than this


def crossings(
    loads: int, tags_per_load: int = 12, period_s: float = 6.0, seed: int = 6
) -> list[Sighting]:
    """`loads` loads alternating inbound (outside -> inside) and outbound, one every
    `period_s`; each tag an SGTIN-96-like EPC-96."""
    assert loads >= 0, loads
    assert tags_per_load > 0, tags_per_load
    assert period_s > CROSSING_S, period_s
    rng = random.Random(seed)  # noqa: S311 - simulation, not crypto
    out: list[Sighting] = []
    for load in range(loads):
        inbound = load % 2 == 0
        order = OUTSIDE + INSIDE if inbound else INSIDE + OUTSIDE
        for tag in range(tags_per_load):
            epc = bytes([0x30, 0x14]) + load.to_bytes(4, "big") + tag.to_bytes(6, "big")
            out += _tag(epc, load * period_s, order, rng)
    out.sort(key=lambda s: s.at_s)
    return out


def _tag(epc: bytes, start_s: float, order: tuple[int, ...], rng: random.Random) -> list[Sighting]:
    out = []
    steps = int(CROSSING_S * READS_PER_S)
    for step in range(steps):
        t = step / READS_PER_S
        x_m = 3.0 * (t / CROSSING_S) - 1.5  # -1.5 .. 1.5 m; the door plane at 0
        for i, antenna in enumerate(order):
            side_m = -0.75 if i < 2 else 0.75
            distance_m = math.hypot(x_m - side_m, 1.0)
            rssi = -40.0 - 20.0 * math.log10(distance_m / 0.5) + rng.gauss(0.0, 1.5)
            if distance_m > FIELD_M or rng.random() < 0.15:
                continue
            phase = (720.0 * distance_m / WAVELENGTH_M) % 360.0
            out.append(Sighting(start_s + t + rng.uniform(0, 0.01), epc, antenna, rssi, phase))
    return out
