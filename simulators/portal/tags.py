"""Where each tag sits on a load and how well it can be read in one pass."""

import random
from dataclasses import dataclass

from simulators.portal.layout import Zone
from simulators.portal.noise import NoiseLevel

PALLET_LENGTH_M = 1.2  # along the direction of travel (x)
PALLET_WIDTH_M = 1.0  # across it (y)
GOODS_HEIGHT_M = 1.1  # goods stacked on the pallet, centred on the load's centre height
ORIENTATION_LOSS_DB_MAX = 3.0  # even well oriented tags differ by up to this much


@dataclass(frozen=True, slots=True)
class PlacedTag:
    epc: bytes
    ox_m: float  # offset from the load's centre
    oy_m: float
    oz_m: float
    loss_db: float  # orientation and the goods it is stuck on, towards every antenna
    dead: bool = False  # never answers
    blind_zone: Zone | None = None  # the zone whose antennas cannot see it at all


def place(
    items: tuple[bytes, ...], pallet: bytes | None, noise: NoiseLevel, rng: random.Random
) -> list[PlacedTag]:
    """Items anywhere in the stack; the pallet's tag on one of its long sides, low down."""
    out = [
        _tag(
            epc,
            rng.uniform(-PALLET_LENGTH_M / 2, PALLET_LENGTH_M / 2),
            rng.uniform(-PALLET_WIDTH_M / 2, PALLET_WIDTH_M / 2),
            rng.uniform(-GOODS_HEIGHT_M / 2, GOODS_HEIGHT_M / 2),
            noise,
            rng,
        )
        for epc in items
    ]
    if pallet is not None:
        side = rng.choice((-1.0, 1.0)) * PALLET_WIDTH_M / 2
        out.append(_tag(pallet, 0.0, side, -GOODS_HEIGHT_M / 2, noise, rng))
    return out


def _tag(
    epc: bytes, ox: float, oy: float, oz: float, noise: NoiseLevel, rng: random.Random
) -> PlacedTag:
    loss = rng.uniform(0.0, ORIENTATION_LOSS_DB_MAX)
    if rng.random() < noise.bad_orientation_p:
        loss += noise.bad_orientation_loss_db * rng.uniform(0.7, 1.3)
    dead = rng.random() < noise.dead_tag_p
    blind: Zone | None = None
    if rng.random() < noise.one_side_p:
        blind = rng.choice(("outside", "inside"))
    return PlacedTag(epc, ox, oy, oz, loss, dead, blind)
