"""A load-cell shelf: how the edge polls its lanes and turns their weight into item counts.

Every value has its unit last in its name. The recognizer (edge_agent/recognizers/weight.py)
documents how each one is used; the defaults are designed for the documented default noise
(white sensor noise sigma 0.5 g at 10 Hz, piece weights with a CV of 1 % (up to 2 %), transients
settled within 2 s, drift <= 0.02 g/s).
"""

from typing import Literal, Self

from pydantic import Field, model_validator

from device_profiles.base import ProfileModel, ProfileName


class ShelfProfile(ProfileModel):
    kind: Literal["shelf"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    poll_interval_ms: int = Field(default=100, ge=10, le=60_000)

    # Stability: a lane is stable when its last stable_window_s of samples lie within a band
    stable_window_s: float = Field(
        default=1.0,
        gt=0.0,
        le=30.0,
        description="the samples of this last stretch of time must lie within the band",
    )
    stable_band_g: float = Field(
        default=4.0, gt=0.0, le=10_000.0, description="max - min allowed over the window"
    )
    stable_band_per_kg_g: float = Field(
        default=0.1,
        ge=0.0,
        le=100.0,
        description="the band grows by this much per kg on the lane (load-dependent noise)",
    )
    use_stable_bit: bool = Field(
        default=True,
        description="trust the transmitters' STABLE bit instead of the band where they have one",
    )
    stable_bit_hold_s: float = Field(
        default=0.5,
        gt=0.0,
        le=30.0,
        description="with the STABLE bit: stable when every sample of this last stretch says so",
    )
    # Changes: a sample this far from the idle baseline (or an unstable window) starts one
    change_trigger_g: float = Field(
        default=4.0, gt=0.0, le=10_000.0, description="a sample this far off the baseline"
    )
    change_trigger_units: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="... or this many of the lane's units, when that is less (light items)",
    )
    change_restart_s: float = Field(
        default=0.3,
        ge=0.0,
        le=10.0,
        description="a change back near the baseline this long restarts at its next excursion",
    )
    # Counting statistics: how far from a whole number of units a change may be
    noise_sigma_g: float = Field(
        default=0.5, gt=0.0, le=1000.0, description="sensor noise per sample (after its filter)"
    )
    piece_weight_cv_pct: float = Field(
        default=2.0,
        ge=0.0,
        le=20.0,
        description="the largest spread of one unit's real weight around its nominal, in %",
    )
    sigma_floor_units: float = Field(
        default=0.01,
        ge=0.0,
        le=0.2,
        description="spread no model covers (creep, drift, ringing), in units",
    )
    cv_learn_changes: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="a lane learns its pieces' spread from about this many last changes",
    )
    anomaly_prior_pct: float = Field(
        default=4.0,
        gt=0.0,
        lt=50.0,
        description="how often a change is no whole number of units (a foreign item), in %",
    )
    residual_units_max: float = Field(
        default=0.3,
        gt=0.0,
        lt=0.5,
        description="... and never further than this from it, whatever the spread",
    )
    noise_track_s: float = Field(
        default=60.0,
        gt=0.0,
        le=86_400.0,
        description="time constant of the noise a lane measures while idle",
    )
    noise_ratio_max: float = Field(
        default=4.0,
        ge=1.0,
        le=100.0,
        description="band, trigger and counting noise grow with the measured noise up to this x",
    )
    # Levels: a stable level is averaged longer while noise dominates the count (light items)
    level_noise_units: float = Field(
        default=0.02,
        gt=0.0,
        le=0.5,
        description="average a new level until the noise of the change is this many units ...",
    )
    level_wait_s_max: float = Field(
        default=2.0,
        ge=0.0,
        le=60.0,
        description="... and a doubt waits this long for more samples (a new change ends it)",
    )
    # Drift: while idle the baseline (and the tracked zero) follows the samples this slowly
    drift_track_s: float = Field(
        default=10.0, gt=0.0, le=3600.0, description="time constant of idle drift tracking"
    )
    drift_g_per_s_max: float = Field(
        default=0.02,
        ge=0.0,
        le=100.0,
        description="drift while a lane changes is not tracked: its zero is this much less sure",
    )
    zero_drift_g_max: float = Field(
        default=50.0,
        gt=0.0,
        le=100_000.0,
        description="a tracked zero further than this from the transmitter's makes counts doubtful",
    )
    # Continuous count: a COUNT of every lane after a quiet spell, then periodically
    count_quiet_s: float = Field(
        default=30.0,
        gt=0.0,
        le=86_400.0,
        description="a lane stable this long after a change (or the start) posts a COUNT",
    )
    count_every_s: float = Field(
        default=3600.0, gt=0.0, le=7 * 86_400.0, description="... and again this often"
    )
    window_samples_max: int = Field(
        default=256,
        ge=4,
        le=4096,
        description="samples kept per lane for the window (bounds memory and the snapshot)",
    )

    @model_validator(mode="after")
    def _window_holds(self) -> Self:
        per_window = max(self.stable_window_s, self.stable_bit_hold_s) * 1000.0
        if per_window / self.poll_interval_ms + 2 > self.window_samples_max:
            raise ValueError(
                "window_samples_max is too small for stable_window_s at poll_interval_ms"
            )
        if self.count_every_s < self.count_quiet_s:
            raise ValueError("count_every_s must be at least count_quiet_s")
        return self
