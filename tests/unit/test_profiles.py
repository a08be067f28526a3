from pathlib import Path

import pytest

from device_profiles import (
    PortalProfile,
    ProfileError,
    ScannerProfile,
    UnknownProfileError,
    known_profiles,
    load_profile,
    load_profile_of,
)
from device_profiles.schema import DEFAULT_SKU_PATTERN
from stockwire.errors import ConfigError
from tests.unit.test_rfid_profiles import BAD as READER_BAD
from tests.unit.test_weighing_profiles import BAD as WEIGHING_BAD

SHIPPED = {
    "generic-tcp-scanner": ("tcp", False, "\r\n"),
    "generic-tcp-scanner-aim": ("tcp", True, "\r\n"),
    "generic-serial-scanner": ("serial", False, "\r"),
    "generic-serial-scanner-aim": ("serial", True, "\r"),
}
MINIMAL = 'kind = "scanner"\ntransport = "tcp"\n'
PORTALS = ("dock-door-portal",)
PORTAL = 'kind = "rfid-portal"\n'
READERS = (
    "impinj-r700",
    "impinj-speedway-r420",
    "zebra-fx9600",
)  # tests/unit/test_rfid_profiles.py


def test_known_profiles_are_the_shipped_ones() -> None:
    assert set(SHIPPED) | set(PORTALS) | set(READERS) <= set(known_profiles())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert isinstance(profile, ScannerProfile)
    assert profile.name == name
    assert (profile.transport, profile.symbology_ids, profile.terminator) == SHIPPED[name]
    assert profile.sku_pattern == DEFAULT_SKU_PATTERN


def test_serial_profiles_are_9600_8n1() -> None:
    for name in ("generic-serial-scanner", "generic-serial-scanner-aim"):
        profile = load_profile(name)
        assert isinstance(profile, ScannerProfile)
        serial = profile.serial
        assert (serial.baud, serial.bytesize, serial.parity, serial.stopbits) == (9600, 8, "N", 1)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ProfileError,
        match=r"^no profile named 'nope'; known: baykon-mx08, dock-door-portal, generic-rs485-",
    ):
        load_profile("nope")


def test_unknown_name_of_a_kind_lists_that_kind_only() -> None:
    with pytest.raises(UnknownProfileError) as info:
        load_profile_of("nope", ScannerProfile)
    assert info.value.known == (
        "generic-serial-scanner",
        "generic-serial-scanner-aim",
        "generic-tcp-scanner",
        "generic-tcp-scanner-aim",
    )
    assert "nope.toml" not in str(info.value)  # no file is blamed: there is none


def test_a_profile_error_is_a_config_error() -> None:
    assert issubclass(ProfileError, ConfigError)


@pytest.mark.parametrize("as_path", [True, False])
def test_load_by_path_takes_the_name_from_the_file(tmp_path: Path, as_path: bool) -> None:
    path = tmp_path / "dock-scanner.toml"
    path.write_text(MINIMAL + 'prefix = "@@"\n')
    profile = load_profile(path if as_path else str(path))
    assert isinstance(profile, ScannerProfile)
    assert (profile.name, profile.prefix, profile.duplicate_window_ms) == (
        "dock-scanner",
        "@@",
        1000,
    )


BAD = [
    ("kind-missing", 'transport = "tcp"\n', "(root)", "Unable to extract tag using discriminator"),
    ("kind-unknown", 'kind = "rfid"\ntransport = "tcp"\n', "(root)", "'rfid'"),
    ("baud", MINIMAL + "[serial]\nbaud = 9601\n", "serial.baud", "baud 9601 is not one"),
    ("parity", MINIMAL + '[serial]\nparity = "X"\n', "serial.parity", "'N', 'E'"),
    ("stopbits", MINIMAL + "[serial]\nstopbits = 3\n", "serial.stopbits", "not one of"),
    ("bytesize", MINIMAL + "[serial]\nbytesize = 9\n", "serial.bytesize", "5, 6, 7 or 8"),
    ("sku", MINIMAL + 'sku_pattern = "(["\n', "sku_pattern", "does not compile"),
    ("terminator", MINIMAL + 'terminator = "\\t"\n', "terminator", "'\\r\\n'"),
    ("encoding", MINIMAL + 'encoding = "klingon"\n', "encoding", "unknown encoding"),
    ("max-line", MINIMAL + "max_line_bytes = 0\n", "max_line_bytes", "greater than"),
    ("window", MINIMAL + "duplicate_window_ms = -1\n", "duplicate_window_ms", "greater"),
    ("extra", MINIMAL + 'colour = "red"\n', "colour", "Extra inputs are not permitted"),
    ("transport", 'kind = "scanner"\ntransport = "usb"\n', "transport", "'tcp' or"),
    ("name", MINIMAL + 'name = "other"\n', "name", "'other' differs from the file name"),
    ("toml", MINIMAL + "prefix = \n", "(toml)", "Invalid value"),
    ("portal-both-zones", PORTAL + "inside_ports = [2, 3]\n", "inside_ports", "port 2 is also in"),
    (
        "portal-neighbour-is-ours",
        PORTAL + "neighbour_ports = [4]\n",
        "neighbour_ports",
        "port 4 is also in inside_ports",
    ),
    ("portal-twice", PORTAL + "outside_ports = [1, 1]\n", "outside_ports", "listed twice"),
    ("portal-port-0", PORTAL + "outside_ports = [0]\n", "outside_ports", "not 1..65535"),
    ("portal-no-inside", PORTAL + "inside_ports = []\n", "inside_ports", "at least 1"),
    ("portal-alpha", PORTAL + "rssi_smoothing_alpha = 0\n", "rssi_smoothing_alpha", "greater"),
    ("portal-close", PORTAL + "pass_close_s = 30\nstanding_s_max = 10\n", "(root)", "pass_close_s"),
    ("portal-extra", PORTAL + "pass_close_ms = 900\n", "pass_close_ms", "Extra inputs"),
    ("portal-phase", PORTAL + 'use_phase = "maybe"\n', "use_phase", "valid boolean"),
]


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [b[1:] for b in (*BAD, *READER_BAD, *WEIGHING_BAD)],
    ids=[b[0] for b in (*BAD, *READER_BAD, *WEIGHING_BAD)],
)
def test_bad_profile_names_file_field_and_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert (error.file, error.field) == (str(path), field)
    assert reason in error.reason
    assert str(error).startswith(f"{path}: {field}: ")


def test_unreadable_profile_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"missing\.toml: \(file\): cannot read"):
        load_profile(tmp_path / "missing.toml")


def test_the_dock_door_portal_ships_with_the_defaults() -> None:
    profile = load_profile("dock-door-portal")
    assert isinstance(profile, PortalProfile)
    defaults = PortalProfile(kind="rfid-portal", name="dock-door-portal")
    assert profile.model_dump(exclude={"description"}) == defaults.model_dump(
        exclude={"description"}
    )
    assert (profile.outside_ports, profile.inside_ports, profile.neighbour_ports) == (
        (1, 2),
        (3, 4),
        (),
    )


def test_every_portal_parameter_has_a_default_and_a_unit_or_is_a_count(tmp_path: Path) -> None:
    path = tmp_path / "door-7.toml"
    path.write_text(PORTAL + "neighbour_ports = [5, 6]\n")
    profile = load_profile(path)
    assert isinstance(profile, PortalProfile)
    assert profile.neighbour_ports == (5, 6)
    units = ("_dbm", "_db", "_s", "_s_max", "_alpha", "_min", "_max", "_per_zone", "_ports")
    layout = {"kind", "name", "description", "use_phase"}
    for name in set(PortalProfile.model_fields) - layout:
        assert name.endswith(units), name
