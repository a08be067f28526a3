"""Scale-counting statistics: a weight (or a change of weight) in units, and how sure that is.

x = grams / unit weight; n = round(x); the residual r = x - n. A true count of n units reads
with a spread (in units) of sigma(n) = sqrt(n * cv^2 + noise^2), where cv is the spread of one
piece's weight (`piece_weight_cv_pct`) and noise that of the two levels compared (the sensor's
`noise_sigma_g` over the samples averaged, in units). The count is accepted when |r| is within
`tolerance_sigmas` * sigma(n), and never beyond `residual_units_max`: so the tolerance grows
with sqrt(n), as the piece weights add up.

Confidence is the posterior of n against its neighbours n - 1 and n + 1 (equal priors), capped
by how far inside the tolerance r lies: 1 at r = 0, 0.5 at the edge of the tolerance. A count
outside the tolerance gets a confidence below 0.5 (0.45 near the edge, falling to 0 at r =
+-0.5), which sends it to review.
"""

import math
from dataclasses import dataclass

from device_profiles.shelf import ShelfProfile

FLAGGED_CONFIDENCE_MAX = 0.45


@dataclass(frozen=True, slots=True)
class Judgement:
    qty: int  # round(x), signed for a change
    units: float  # x
    residual_units: float  # x - qty, -0.5..0.5
    tolerance_units: float
    confidence: float

    @property
    def accepted(self) -> bool:
        return abs(self.residual_units) <= self.tolerance_units


def sigma_units(shelf: ShelfProfile, n: int, unit_g: float, noise_g: float) -> float:
    cv = shelf.piece_weight_cv_pct / 100.0
    return math.sqrt(abs(n) * cv * cv + (noise_g / unit_g) ** 2)


def judge(shelf: ShelfProfile, grams: float, unit_g: float, noise_g: float) -> Judgement:
    """`grams` (a change, or a load above the zero) in units of `unit_g`; `noise_g` is the
    standard deviation of `grams` apart from the pieces' own spread."""
    x = grams / unit_g
    n = round(x)
    r = max(-0.5, min(0.5, x - n))
    sigma = sigma_units(shelf, n, unit_g, noise_g)
    tolerance = min(shelf.residual_units_max, shelf.tolerance_sigmas * sigma)
    posterior = _posterior(shelf, x, n, unit_g, noise_g)
    if abs(r) <= tolerance:
        fit = 1.0 - 0.5 * (r / tolerance) ** 2
        confidence = min(posterior, fit)
    else:
        confidence = FLAGGED_CONFIDENCE_MAX * min(posterior, 1.0 - 2.0 * abs(r) + 1e-12)
    return Judgement(n, x, r, tolerance, round(max(0.0, confidence), 3))


def _posterior(shelf: ShelfProfile, x: float, n: int, unit_g: float, noise_g: float) -> float:
    def likelihood(k: int) -> float:
        s = sigma_units(shelf, k, unit_g, noise_g)
        return math.exp(-0.5 * ((x - k) / s) ** 2) / s

    own = likelihood(n)
    total = own + likelihood(n - 1) + likelihood(n + 1)
    return own / total if total > 0.0 else 0.0
