"""Turn one load's path past a portal into timed reads per tag and antenna.

The read rate of a tag on an antenna is `tag_reads_per_s_max / ports` times the probability
that it answers (from the RSSI margin at the load's centre), thinned by missed reads and capped
by the reader's `reads_per_s_max`; reads are a Poisson stream on that rate. Each read's RSSI and
phase come from the tag's exact position at the read's instant.
"""

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from statistics import NormalDist

from simulators.portal.layout import Antenna
from simulators.portal.motion import Path
from simulators.portal.noise import NoiseLevel
from simulators.portal.radio import (
    BACK_LOBE_DB,
    PATTERN_EXPONENT,
    RadioModel,
    pattern_db,
)
from simulators.portal.tags import PALLET_WIDTH_M, PlacedTag

CELL_M = 0.5  # rates are evaluated every this much travel ...
STAND_CELL_S = 1.0  # ... or this often while the load stands
BLIND_LOSS_DB = 40.0
SHADOW_DB_PER_M = 10.0  # goods between a tag and the pallet face an antenna looks at
NEGLIGIBLE_MARGIN_DB = -15.0  # a tag this far below threshold everywhere is not computed
NEAR_M = 0.5  # closer than this the far-field model no longer holds; clamp

PATTERN_DB_PER_DECADE = 10.0 * PATTERN_EXPONENT
_BACK_COS = 10.0 ** (BACK_LOBE_DB / PATTERN_DB_PER_DECADE)  # below it the back lobe floor holds
# Standard normal quantiles at the midpoints of _NORMAL_N equal-probability bins.
_NORMAL_N = 4096
_NORMAL = [NormalDist().inv_cdf((i + 0.5) / _NORMAL_N) for i in range(_NORMAL_N)]

# (at_s, epc, antenna port, rssi_dbm, phase_deg)
Read = tuple[float, bytes, int, float, float | None]


@dataclass(frozen=True, slots=True)
class Cell:
    t0_s: float
    t1_s: float
    x0_m: float
    x1_m: float


@dataclass(frozen=True, slots=True)
class Scene:
    """A portal's antennas and reader, and where the load moves relative to them."""

    antennas: tuple[Antenna, ...]
    radio: RadioModel
    noise: NoiseLevel
    door_y_m: float = 0.0  # the door the load moves through: 0 = the portal's own
    extra_loss_db: float = 0.0  # walls between (neighbour doors)


def cells(path: Path) -> list[Cell]:
    out: list[Cell] = []
    for leg in path.legs:
        moving = leg.x1_m != leg.x0_m
        n = math.ceil(
            abs(leg.x1_m - leg.x0_m) / CELL_M if moving else (leg.t1_s - leg.t0_s) / STAND_CELL_S
        )
        n = max(n, 1)
        dt, dx = (leg.t1_s - leg.t0_s) / n, (leg.x1_m - leg.x0_m) / n
        out += [
            Cell(
                leg.t0_s + i * dt,
                leg.t0_s + (i + 1) * dt,
                leg.x0_m + i * dx,
                leg.x0_m + (i + 1) * dx,
            )
            for i in range(n)
        ]
    return out


def render(tags: list[PlacedTag], path: Path, scene: Scene, rng: random.Random) -> list[Read]:
    """All reads of the load's tags on the scene's antennas, in no particular order."""
    grid = cells(path)
    y_m = scene.door_y_m + path.y_m
    margins = {a.port: _margins(a, grid, y_m, path.z_m, scene) for a in scene.antennas}
    peaks = {port: max(m) for port, m in margins.items()}
    pairs: list[tuple[PlacedTag, Antenna, float]] = []
    for tag in tags:
        if tag.dead:
            continue
        for antenna in scene.antennas:
            loss = _loss(tag, antenna, y_m, scene, rng)
            if peaks[antenna.port] - loss >= NEGLIGIBLE_MARGIN_DB:
                pairs.append((tag, antenna, loss))
    r = scene.radio
    top = r.tag_reads_per_s_max / len(scene.antennas) * (1.0 - scene.noise.miss_read_p)
    dts = [g.t1_s - g.t0_s for g in grid]
    weights = [_weights(margins[a.port], loss, top, dts, r.softness_db) for _, a, loss in pairs]
    if len(pairs) * top > r.reads_per_s_max:  # the reader may be saturated somewhere
        _cap(weights, grid, r.reads_per_s_max)
    reads: list[Read] = []
    for (tag, antenna, loss), w in zip(pairs, weights, strict=True):
        reads += _sample(tag, antenna, loss, grid, w, y_m, path.z_m, scene, rng)
    return reads


def _margins(a: Antenna, grid: list[Cell], y_m: float, z_m: float, scene: Scene) -> list[float]:
    """RSSI above threshold at the load's centre, per cell, for a tag without losses."""
    r = scene.radio
    return [
        _rssi(a, (g.x0_m + g.x1_m) / 2, y_m, z_m, r, scene.noise.multipath_loss_db)[0]
        - r.threshold_dbm
        for g in grid
    ]


def _rssi(
    a: Antenna, x: float, y: float, z: float, r: RadioModel, multipath_db: float
) -> tuple[float, float]:
    """(mean RSSI without tag losses, distance) of a point seen by an antenna."""
    dx, dy, dz = x - a.x_m, y - a.y_m, z - a.z_m
    d = max(math.sqrt(dx * dx + dy * dy + dz * dz), NEAR_M)
    cos = (dx * a.aim[0] + dy * a.aim[1] + dz * a.aim[2]) / d
    gain = max(2.0 * pattern_db(cos), -multipath_db)
    return r.rssi_1m_dbm - 20.0 * r.path_loss_exponent * math.log10(d) + gain, d


def _loss(tag: PlacedTag, a: Antenna, y_m: float, scene: Scene, rng: random.Random) -> float:
    """The tag's losses towards one antenna for this pass (slow shadowing included)."""
    facing = 1.0 if a.y_m > y_m else -1.0
    depth_m = PALLET_WIDTH_M / 2 - facing * tag.oy_m
    loss = tag.loss_db + depth_m * SHADOW_DB_PER_M + scene.extra_loss_db
    loss += rng.gauss(0.0, scene.noise.shadowing_db) if scene.noise.shadowing_db > 0 else 0.0
    return loss + (BLIND_LOSS_DB if tag.blind_zone == a.zone else 0.0)


def _weights(
    margins: list[float], loss: float, top: float, dts: list[float], soft: float
) -> list[float]:
    """Expected reads per cell: top rate x read probability (logistic, inlined: hot) x time."""
    k, cut, exp = -1.0 / soft, loss + NEGLIGIBLE_MARGIN_DB - 5.0, math.exp
    return [
        top * dt / (1.0 + exp(k * (m - loss))) if m > cut else 0.0
        for m, dt in zip(margins, dts, strict=True)
    ]


def _cap(weights: list[list[float]], grid: list[Cell], reads_per_s_max: float) -> None:
    """Scale every cell down to what the reader can read in it, in place."""
    totals = [0.0] * len(grid)
    for w in weights:
        totals = [t + x for t, x in zip(totals, w, strict=True)]
    caps = [
        min(1.0, reads_per_s_max * (g.t1_s - g.t0_s) / t) if t > 0 else 1.0
        for t, g in zip(totals, grid, strict=True)
    ]
    for w in weights:
        w[:] = [x * c for x, c in zip(w, caps, strict=True)]


def _sample(
    tag: PlacedTag,
    a: Antenna,
    loss: float,
    grid: list[Cell],
    weights: list[float],
    y_m: float,
    z_m: float,
    scene: Scene,
    rng: random.Random,
) -> list[Read]:
    """Poisson reads on the cells' weights; RSSI and phase from the tag's exact position.

    The hot loop of the physics: geometry inlined, normal noise from a quantile table.
    """
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    count = poisson(rng, total)
    if count == 0:
        return []
    r, noise = scene.radio, scene.noise
    offset_deg = rng.uniform(0.0, 360.0)
    phase_per_m = 720.0 / r.wavelength_m if r.reports_phase else 0.0
    base = r.rssi_1m_dbm - loss
    per_decade = 20.0 * r.path_loss_exponent
    floor_db = -noise.multipath_loss_db
    fading, phase_noise = noise.fading_db, noise.phase_noise_deg
    ay, az = y_m + tag.oy_m - a.y_m, z_m + tag.oz_m - a.z_m
    ux, uy, uz = a.aim
    side2, lateral = ay * ay + az * az, ay * uy + az * uz
    random_, last, log10, normal = rng.random, len(grid) - 1, math.log10, _NORMAL
    out: list[Read] = []
    for _ in range(count):
        g = grid[min(bisect_right(cumulative, random_() * total), last)]
        f = random_()
        dx = g.x0_m + f * (g.x1_m - g.x0_m) + tag.ox_m - a.x_m
        d = max(math.sqrt(dx * dx + side2), NEAR_M)
        cos = (dx * ux + lateral) / d
        gain = 2.0 * (PATTERN_DB_PER_DECADE * log10(cos) if cos > _BACK_COS else BACK_LOBE_DB)
        rssi = base - per_decade * log10(d) + max(gain, floor_db)
        rssi += fading * normal[int(random_() * _NORMAL_N)]
        if rssi < r.sensitivity_dbm:
            continue
        phase = None
        if phase_per_m:
            noise_deg = phase_noise * normal[int(random_() * _NORMAL_N)]
            phase = (phase_per_m * d + offset_deg + noise_deg) % 360.0
        out.append((g.t0_s + f * (g.t1_s - g.t0_s), tag.epc, a.port, rssi, phase))
    return out


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0.0:
        return 0
    if mean > 40.0:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
