"""How noisy a portal's world is: the documented default and a scale to raise it step by step.

Every level is per pass or per tag so a bench can reason about it; `scaled(f)` multiplies
probabilities, rates and spreads by f (probabilities capped) and divides the isolations and
losses that keep stray signals out by f, so f > 1 is always a harder world.
"""

from dataclasses import dataclass, fields, replace

# Probabilities that would make the world meaningless if scaled past them.
_CAPS = {"dead_tag_p": 0.5, "miss_read_p": 0.95, "one_side_p": 0.9, "bad_orientation_p": 1.0}
_DIVIDED = ("neighbour_isolation_db", "multipath_loss_db")


@dataclass(frozen=True, slots=True)
class NoiseLevel:
    """Defaults are the documented default noise (scale 1); see simulators/portal/README.md."""

    scale: float = 1.0
    # -- reads of a tag that is in the field ------------------------------------------------
    miss_read_p: float = 0.10  # a read the physics would produce is lost (collision, CRC error)
    shadowing_db: float = 3.0  # sigma of slow log-normal shadowing per tag x antenna x pass
    fading_db: float = 2.0  # sigma of fast per-read RSSI noise
    phase_noise_deg: float = 5.0  # sigma of per-read RF phase noise
    multipath_loss_db: float = 18.0  # reflections (truck, dock leveller): each antenna also sees
    # what is behind or beside it, this much weaker than the direct path at the same distance
    # -- tags -------------------------------------------------------------------------------
    bad_orientation_p: float = 0.05  # share of tags turned badly towards the antennas ...
    bad_orientation_loss_db: float = 8.0  # ... which are this much weaker on every antenna
    one_side_p: float = 0.02  # share of tags seen by one zone only (metal/liquid on the other)
    dead_tag_p: float = 0.00005  # share of tags never read at all (broken chip, deep null)
    # -- other traffic (per true pass) -------------------------------------------------------
    neighbour_per_pass: float = 0.3  # loads crossing the neighbour door
    neighbour_isolation_db: float = 3.0  # extra loss (wall, door frame) towards the neighbour door
    staged_per_pass: float = 0.02  # pallets set down in the field that stand, then leave/cross
    backout_per_pass: float = 0.03  # forklifts that nose into the doorway and back out
    reversal_per_pass: float = 0.02  # loads that reach the door plane, reverse and leave
    close_pair_p: float = 0.05  # a second load follows 1-3 s behind on the same path

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"NoiseLevel.{f.name} must be >= 0, got {value}")
        for name, cap in _CAPS.items():
            if getattr(self, name) > cap:
                raise ValueError(f"NoiseLevel.{name} must be <= {cap}")

    def scaled(self, factor: float) -> "NoiseLevel":
        """This noise made `factor` times worse (factor 0 = a clean world; no strays at all)."""
        if factor < 0:
            raise ValueError(f"noise scale factor must be >= 0, got {factor}")
        changes: dict[str, float] = {"scale": self.scale * factor}
        for f in fields(self):
            if f.name == "scale":
                continue
            value = getattr(self, f.name)
            if f.name in _DIVIDED:
                changes[f.name] = value / factor if factor > 0 else 1000.0
            else:
                changes[f.name] = min(value * factor, _CAPS.get(f.name, float("inf")))
        return replace(self, **changes)

    @classmethod
    def clean(cls) -> "NoiseLevel":
        """Only geometry: every tag readable, nothing else moving, no noise."""
        return cls().scaled(0.0)
