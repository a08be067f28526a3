"""Scale-counting statistics: a weight (or a change of weight) in units, and how sure that is.

x = grams / unit weight; n = round(x); the residual r = x - n. A true count of k units reads
x ~ Normal(k, sigma(k)) with sigma(k) = sqrt(|k| cv^2 + noise^2 + floor^2) in units, where cv
is the spread of one piece's weight (`piece_weight_cv_pct`, or more as the lane learns it),
noise that of the levels compared (the lane's sensor noise over the samples averaged) and
floor (`sigma_floor_units`) what neither models: creep and drift between the levels, a last
bit of ringing. So the spread grows with sqrt(n), as the piece weights add up.

The confidence is the posterior probability of n whole units against n - 1 and n + 1 and
against an anomaly (a foreign item, a broken piece: prior `anomaly_prior_pct`, its residual
uniform over a unit). A count is accepted when that is >= 0.5 and |r| is within
`residual_units_max`; the tolerance is where the posterior falls to 0.5. A count that is not
accepted gets a confidence below 0.5 (at most 0.45), which sends it to review.
"""

import math
from dataclasses import dataclass

from device_profiles.shelf import ShelfProfile

FLAGGED_CONFIDENCE_MAX = 0.45
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True, slots=True)
class Judgement:
    qty: int  # round(x), signed for a change
    units: float  # x
    residual_units: float  # x - qty, -0.5..0.5
    tolerance_units: float  # the |residual| up to which a count is accepted
    confidence: float

    @property
    def accepted(self) -> bool:
        return self.confidence >= 0.5


def sigma_units(n: int, unit_g: float, noise_g: float, cv: float, floor: float) -> float:
    return math.sqrt(abs(n) * cv * cv + (noise_g / unit_g) ** 2 + floor * floor)


def judge(
    shelf: ShelfProfile, grams: float, unit_g: float, noise_g: float, cv: float | None = None
) -> Judgement:
    """`grams` (a change, or a load above the zero) in units of `unit_g`; `noise_g` is the
    standard deviation of `grams` apart from the pieces' own spread, `cv` that spread (by
    default the profile's)."""
    cv = shelf.piece_weight_cv_pct / 100.0 if cv is None else cv
    x = grams / unit_g
    n = round(x)
    r = max(-0.5, min(0.5, x - n))
    prior = shelf.anomaly_prior_pct / 100.0
    floor = shelf.sigma_floor_units

    def density(k: int) -> float:
        s = sigma_units(k, unit_g, noise_g, cv, floor)
        return (1.0 - prior) * math.exp(-0.5 * ((x - k) / s) ** 2) / (s * _SQRT_2PI)

    own = density(n)
    posterior = own / (own + density(n - 1) + density(n + 1) + prior)
    sigma = sigma_units(n, unit_g, noise_g, cv, floor)
    tolerance = min(shelf.residual_units_max, _even_odds_units(sigma, prior))
    confidence = posterior
    if abs(r) > tolerance or posterior < 0.5:
        confidence = min(posterior, FLAGGED_CONFIDENCE_MAX)
    return Judgement(n, x, r, tolerance, round(confidence, 3))


def _even_odds_units(sigma: float, prior: float) -> float:
    """The residual at which n units and an anomaly are equally likely (neighbours aside)."""
    if prior <= 0.0:
        return 0.5
    odds = (1.0 - prior) / (prior * sigma * _SQRT_2PI)
    return sigma * math.sqrt(2.0 * math.log(odds)) if odds > 1.0 else 0.0
