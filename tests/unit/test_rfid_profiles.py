"""Reader profiles: the shipped ones load with their vendor facts; bad ones name file and field."""

import json
from pathlib import Path

import pytest

from device_profiles import (
    ProfileError,
    RfidReaderProfile,
    ScannerProfile,
    load_profile_of,
)

MINIMAL = """kind = "rfid-reader"
vendor = "impinj"
model = "Speedway R420"
antenna_ports = 4
tx_power_dbm_min = 10.0
tx_power_dbm_max = 30.0
tx_power_dbm_step = 0.25
tx_power_dbm = 27.5
mode_id = 1000
[modes]
0 = "Max Throughput"
1000 = "AutoSet Dense Reader"
"""
ZEBRA = MINIMAL.replace('"impinj"', '"zebra"')


@pytest.mark.parametrize(
    ("name", "vendor", "ports", "power", "phase"),
    [
        ("impinj-speedway-r420", "impinj", 4, (10.0, 30.0, 0.25), True),
        ("impinj-r700", "impinj", 4, (10.0, 33.0, 0.25), True),
        ("zebra-fx9600", "zebra", 4, (10.0, 30.0, 0.1), False),
    ],
)
def test_shipped_reader_profiles_load(
    name: str, vendor: str, ports: int, power: tuple[float, float, float], phase: bool
) -> None:
    profile = load_profile_of(name, RfidReaderProfile)
    assert (profile.name, profile.kind, profile.vendor) == (name, "rfid-reader", vendor)
    assert profile.antenna_ports == ports
    assert profile.ports == tuple(range(1, ports + 1))
    assert (profile.tx_power_dbm_min, profile.tx_power_dbm_max, profile.tx_power_dbm_step) == power
    assert profile.reports_phase is phase
    assert profile.mode_id in profile.modes
    assert profile.llrp_port == 5084
    assert 0 <= profile.session <= 3


@pytest.mark.parametrize(
    ("name", "capture"),
    [("impinj-speedway-r420", "SpeedwayR-12-34-FF.json"), ("zebra-fx9600", "fx96004a4a4a.json")],
)
def test_profiles_match_the_captured_reader_capabilities(
    testdata: Path, name: str, capture: str
) -> None:
    profile = load_profile_of(name, RfidReaderProfile)
    configs = testdata / "llrp" / "edgex-reader-configs"
    caps = json.loads((configs / capture).read_text())["ReaderCapabilities"]
    assert caps["GeneralDeviceCapabilities"]["MaxSupportedAntennas"] == profile.antenna_ports
    band = caps["RegulatoryCapabilities"]["UHFBandCapabilities"]
    levels = sorted(e["TransmitPowerValue"] / 100 for e in band["TransmitPowerLevels"])
    assert (levels[0], levels[-1]) == (profile.tx_power_dbm_min, profile.tx_power_dbm_max)
    assert levels[1] - levels[0] == pytest.approx(profile.tx_power_dbm_step)
    modes = {m["ModeID"] for m in band["C1G2RFModes"]["UHFC1G2RFModeTableEntries"]}
    assert set(profile.modes) == modes


@pytest.mark.parametrize(
    ("mode", "value"), [("tagfocus", 3), ("dual-target", 2), ("reader-selected", None)]
)
def test_search_mode_maps_to_the_impinj_value(tmp_path: Path, mode: str, value: int | None) -> None:
    path = tmp_path / "r420.toml"
    path.write_text(MINIMAL.replace("mode_id", f'search_mode = "{mode}"\nmode_id'))
    assert load_profile_of(path, RfidReaderProfile).impinj_search_mode == value


def test_a_reader_profile_is_not_a_scanner_profile() -> None:
    with pytest.raises(ProfileError, match=r"kind: 'rfid-reader', but a ScannerProfile is needed"):
        load_profile_of("zebra-fx9600", ScannerProfile)


def _before_modes(text: str, extra: str) -> str:
    return text.replace("[modes]", extra + "\n[modes]")


# Bad reader profiles: tests/unit/test_profiles.py checks each names its file, field and reason.
BAD = [
    ("power-high", MINIMAL.replace("= 27.5", "= 31.0"), "tx_power_dbm", "outside the power table"),
    ("power-low", MINIMAL.replace("= 27.5", "= 5.0"), "tx_power_dbm", "outside the power table"),
    ("power-grid", MINIMAL.replace("= 27.5", "= 27.6"), "tx_power_dbm", "0.25 dB steps"),
    ("power-order", MINIMAL.replace("max = 30.0", "max = 9.0"), "tx_power_dbm_max", "below"),
    ("port", _before_modes(MINIMAL, "antennas = [1, 5]"), "antennas", "antenna port 5 is not"),
    ("port-twice", _before_modes(MINIMAL, "antennas = [2, 2]"), "antennas", "listed twice"),
    ("mode", MINIMAL.replace("mode_id = 1000", "mode_id = 7"), "mode_id", "mode 7 is not"),
    ("session", _before_modes(MINIMAL, "session = 4"), "session", "less than or equal to 3"),
    ("phase-zebra", _before_modes(ZEBRA, "reports_phase = true"), "reports_phase", "zebra"),
    ("search-zebra", _before_modes(ZEBRA, 'search_mode = "dual-target"'), "search_mode", "Impinj"),
    ("search", _before_modes(MINIMAL, 'search_mode = "fast"'), "search_mode", "'single-target'"),
    ("mode-key", MINIMAL.replace('0 = "Max', 'x = "Max'), "modes.x.[key]", "valid integer"),
    ("vendor", MINIMAL.replace('"impinj"', '"acme"'), "vendor", "'impinj'"),
    ("keepalive", _before_modes(MINIMAL, "keepalive_s = 0"), "keepalive_s", "greater than 0"),
    ("port-llrp", _before_modes(MINIMAL, "llrp_port = 70000"), "llrp_port", "less than"),
    ("extra", _before_modes(MINIMAL, "colour = 1"), "colour", "Extra inputs"),
]
