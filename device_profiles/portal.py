"""The dock-door portal layout and every parameter of the portal recognizer, units last.

Zones: `outside_ports` face the yard, `inside_ports` the warehouse; `neighbour_ports` (optional)
are ports of this reader that face the next door, read to reject that door's traffic.
"""

from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from device_profiles.base import ProfileModel, ProfileName

PORTS_MAX = 32
PORT_MAX = 65535  # LLRP AntennaID is 16 bits
ZONE_FIELDS = ("outside_ports", "inside_ports", "neighbour_ports")


class PortalProfile(ProfileModel):
    """One RFID dock-door portal: which reader ports face where, and how passes are judged."""

    kind: Literal["rfid-portal"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    outside_ports: tuple[int, ...] = Field(default=(1, 2), min_length=1, max_length=PORTS_MAX)
    inside_ports: tuple[int, ...] = Field(default=(3, 4), min_length=1, max_length=PORTS_MAX)
    neighbour_ports: tuple[int, ...] = Field(default=(), max_length=PORTS_MAX)

    rssi_min_dbm: float = Field(
        default=-90.0, ge=-120.0, le=0.0, description="weaker reads are ignored (counted as strays)"
    )
    rssi_smoothing_alpha: float = Field(
        default=0.5, gt=0.0, le=1.0, description="EMA weight of a new read in a zone's RSSI"
    )
    direction_score_min: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="a tag crosses when its zone-order score (-1 out .. +1 in) is this far from 0",
    )
    load_score_min: float = Field(
        default=0.45,
        gt=0.0,
        lt=1.0,
        description="the mean score over all tags moving together that makes the load a crossing",
    )
    load_peak_rssi_min_dbm: float = Field(
        default=-62.0,
        ge=-120.0,
        le=0.0,
        description="a load whose strongest tag is weaker crossed another door",
    )
    load_rssi_spread_db: float = Field(
        default=12.0,
        gt=0.0,
        le=60.0,
        description="a tag this much weaker than its load's median peak is not on the load",
    )
    reads_min_per_zone: int = Field(
        default=2, ge=1, le=1000, description="reads each zone needs for a crossing"
    )
    neighbour_margin_db: float = Field(
        default=0.0,
        ge=-40.0,
        le=40.0,
        description="a tag seen this much stronger on neighbour_ports than ours is the neighbour's",
    )
    use_phase: bool = Field(
        default=True, description="use RF phase (when reads carry it) for the direction"
    )
    phase_reads_min: int = Field(
        default=4, ge=2, le=1000, description="phase steps a pass needs before phase decides"
    )
    pass_close_s: float = Field(
        default=2.5, gt=0.0, le=60.0, description="a tag's pass ends after this much silence"
    )
    load_gap_s: float = Field(
        default=0.7,
        gt=0.0,
        le=60.0,
        description="tags crossing within this of each other are one load",
    )
    load_span_s_max: float = Field(
        default=1.5,
        gt=0.0,
        le=60.0,
        description="a load's tags cross within this; a longer group is two loads close together",
    )
    standing_s_max: float = Field(
        default=20.0,
        gt=0.0,
        le=3600.0,
        description="a tag in the field longer than this is standing, not passing",
    )
    tags_tracked_max: int = Field(
        default=1000, ge=10, le=20_000, description="bounds memory and the snapshot"
    )

    @field_validator("outside_ports", "inside_ports", "neighbour_ports")
    @classmethod
    def _ports_apart(cls, ports: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        """A port faces one way: in one zone, once (earlier zones are in info.data)."""
        for i, port in enumerate(ports):
            if not 1 <= port <= PORT_MAX:
                raise ValueError(f"port {port} is not 1..{PORT_MAX}")
            if port in ports[:i]:
                raise ValueError(f"port {port} is listed twice")
            for zone in ZONE_FIELDS:
                if zone != info.field_name and port in info.data.get(zone, ()):
                    raise ValueError(f"port {port} is also in {zone}")
        return ports

    @model_validator(mode="after")
    def _times_agree(self) -> Self:
        if self.load_gap_s >= self.standing_s_max:
            raise ValueError("load_gap_s must be shorter than standing_s_max")
        if self.pass_close_s >= self.standing_s_max:
            raise ValueError("pass_close_s must be shorter than standing_s_max")
        return self
