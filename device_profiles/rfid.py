"""An LLRP RFID reader model: ports, transmit power table, RF modes, and how the edge runs it.

Capabilities (`antenna_ports`, the power table, `modes`) are what the model offers; the rest is
how the edge configures its ROSpec. Settings that need a vendor extension (Impinj search mode,
RF phase) are refused on other vendors. Cross-field checks are field validators, so an error
names the field at fault (fields validate in the order they are declared).
"""

import math
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from device_profiles.base import ProfileModel, ProfileName

LLRP_PORT = 5084
# Impinj Octane ImpinjInventorySearchMode values.
IMPINJ_SEARCH_MODES = {
    "reader-selected": 0,
    "single-target": 1,
    "dual-target": 2,
    "tagfocus": 3,  # single target with suppression
    "single-target-reset": 5,
    "dual-target-b-to-a": 6,
}
SearchMode = Literal[
    "reader-selected",
    "single-target",
    "dual-target",
    "tagfocus",
    "single-target-reset",
    "dual-target-b-to-a",
]
ANTENNA_PORTS_MAX = 64
POWER_GRID_TOLERANCE_DBM = 1e-6


class RfidReaderProfile(ProfileModel):
    """One model of LLRP reader and the inventory settings the edge asks it for."""

    kind: Literal["rfid-reader"]
    name: ProfileName
    description: str = Field(default="", max_length=500)
    vendor: Literal["impinj", "zebra", "generic"]
    model: str = Field(min_length=1, max_length=64)
    llrp_port: int = Field(default=LLRP_PORT, ge=1, le=65535)
    antenna_ports: int = Field(ge=1, le=ANTENNA_PORTS_MAX)
    antennas: tuple[int, ...] = Field(
        default=(), description="ports the edge reads with; empty = all antenna_ports"
    )
    tx_power_dbm_min: float = Field(ge=-10, le=40)
    tx_power_dbm_max: float = Field(ge=-10, le=40)
    tx_power_dbm_step: float = Field(gt=0, le=10)
    tx_power_dbm: float
    modes: dict[int, str] = Field(min_length=1, description="RF mode id -> name")
    mode_id: int
    session: int = Field(default=1, ge=0, le=3)
    search_mode: SearchMode | None = None
    tag_population: int = Field(default=32, ge=1, le=65535)
    report_every_n_tags: int | None = Field(default=None, ge=1, le=65535)
    report_timeout_ms: int = Field(default=0, ge=0, le=3_600_000)
    keepalive_s: float = Field(default=5.0, gt=0, le=3600)
    keepalive_missed_max: int = Field(default=3, ge=1, le=100)
    reports_phase: bool = False

    @field_validator("antennas")
    @classmethod
    def _ports_exist(cls, antennas: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        ports = info.data.get("antenna_ports")
        if ports is None:
            return antennas
        for port in antennas:
            if not 1 <= port <= ports:
                raise ValueError(f"antenna port {port} is not in 1..{ports} (antenna_ports)")
        if len(set(antennas)) != len(antennas):
            raise ValueError("an antenna port is listed twice")
        return antennas

    @field_validator("tx_power_dbm_max")
    @classmethod
    def _max_above_min(cls, top: float, info: ValidationInfo) -> float:
        bottom = info.data.get("tx_power_dbm_min")
        if bottom is not None and top < bottom:
            raise ValueError(f"{top} dBm is below tx_power_dbm_min {bottom} dBm")
        return top

    @field_validator("tx_power_dbm")
    @classmethod
    def _in_power_table(cls, dbm: float, info: ValidationInfo) -> float:
        bottom = info.data.get("tx_power_dbm_min")
        top = info.data.get("tx_power_dbm_max")
        step = info.data.get("tx_power_dbm_step")
        if bottom is None or top is None or step is None:
            return dbm
        if not bottom <= dbm <= top:
            raise ValueError(f"{dbm} dBm is outside the power table {bottom}..{top} dBm")
        steps = (dbm - bottom) / step
        if not math.isclose(steps, round(steps), abs_tol=POWER_GRID_TOLERANCE_DBM):
            raise ValueError(f"{dbm} dBm is not on the table's {step} dB steps from {bottom}")
        return dbm

    @field_validator("mode_id")
    @classmethod
    def _known_mode(cls, mode_id: int, info: ValidationInfo) -> int:
        modes = info.data.get("modes")
        if modes is not None and mode_id not in modes:
            known = ", ".join(str(m) for m in sorted(modes))
            raise ValueError(f"mode {mode_id} is not in modes (known: {known})")
        return mode_id

    @field_validator("search_mode")
    @classmethod
    def _impinj_search(cls, mode: SearchMode | None, info: ValidationInfo) -> SearchMode | None:
        _impinj_only(mode is not None, "search_mode", info)
        return mode

    @field_validator("reports_phase")
    @classmethod
    def _impinj_phase(cls, phase: bool, info: ValidationInfo) -> bool:
        _impinj_only(phase, "reports_phase", info)
        return phase

    @property
    def ports(self) -> tuple[int, ...]:
        """The antenna ports the edge reads with."""
        return self.antennas or tuple(range(1, self.antenna_ports + 1))

    @property
    def impinj_search_mode(self) -> int | None:
        """The ImpinjInventorySearchMode to send; None (send none) lets the reader choose.

        sllurp enables Impinj extensions only for a non-zero mode but sends a zero one anyway,
        so "reader-selected" is sent as no parameter at all.
        """
        if self.search_mode is None or self.search_mode == "reader-selected":
            return None
        return IMPINJ_SEARCH_MODES[self.search_mode]


def _impinj_only(used: bool, field: str, info: ValidationInfo) -> None:
    vendor = info.data.get("vendor")
    if used and vendor is not None and vendor != "impinj":
        raise ValueError(f"{field} needs an Impinj extension; this is a {vendor} reader")
