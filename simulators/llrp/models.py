"""Reader models: what a simulated reader says it is, from recordings of real readers
(readers/*.json, see readers/README.md)."""

import base64
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from simulators.llrp.params import VENDOR_IMPINJ

MODELS = ("impinj-r420", "zebra-fx9600")
DEFAULT_MODEL = "impinj-r420"

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReaderModel:
    name: str
    capabilities: Json  # GET_READER_CAPABILITIES_RESPONSE fields, as recorded
    config: Json  # GET_READER_CONFIG_RESPONSE fields at factory defaults, as recorded

    @property
    def general(self) -> Json:
        return dict(self.capabilities["GeneralDeviceCapabilities"])

    @property
    def vendor(self) -> int:
        return int(self.general["DeviceManufacturer"])

    @property
    def impinj(self) -> bool:
        return self.vendor == VENDOR_IMPINJ

    @property
    def antennas_max(self) -> int:
        return int(self.general["MaxSupportedAntennas"])

    @property
    def priority_max(self) -> int:
        return int(self.capabilities["LLRPCapabilities"]["MaxPriorityLevelSupported"])

    @property
    def rospecs_max(self) -> int:
        return int(self.capabilities["LLRPCapabilities"]["MaxROSpecs"])

    @property
    def power_table(self) -> list[tuple[int, int]]:
        """(index, dBm x 100) of each transmit power level."""
        band = self.capabilities["RegulatoryCapabilities"]["UHFBandCapabilities"]
        return [
            (int(t["Index"]), int(t["TransmitPowerValue"])) for t in band["TransmitPowerLevels"]
        ]

    @property
    def reader_id(self) -> bytes:
        return base64.b64decode(self.config["Identification"]["ReaderID"])


@cache
def load(name: str) -> ReaderModel:
    if name not in MODELS:
        raise ValueError(f"unknown reader model {name!r}; known: {', '.join(MODELS)}")
    text = resources.files("simulators.llrp").joinpath("readers", f"{name}.json").read_text()
    data = json.loads(text)
    return ReaderModel(name, data["ReaderCapabilities"], data["ReaderConfig"])
