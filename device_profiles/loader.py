"""Load device profiles from TOML: shipped ones by name, others by path."""

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from device_profiles.errors import ProfileError, UnknownProfileError
from device_profiles.portal import PortalProfile
from device_profiles.rfid import RfidReaderProfile
from device_profiles.schema import Profile, ScannerProfile
from device_profiles.shelf import ShelfProfile
from device_profiles.weighing import WeighingProfile


def known_profiles() -> list[str]:
    """Names of the profiles shipped in device_profiles/profiles/."""
    shipped = resources.files("device_profiles") / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in shipped.iterdir() if p.name.endswith(".toml")
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (file stem), or any profile file by path."""
    path = _locate(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "(toml)", str(exc)) from None
    return _validate(path, data)


P = TypeVar("P", ScannerProfile, PortalProfile, RfidReaderProfile, WeighingProfile, ShelfProfile)


def load_profile_of(name_or_path: str | Path, kind: type[P]) -> P:
    """`load_profile`, for a caller that needs one kind of profile (a ProfileError if not)."""
    try:
        profile = load_profile(name_or_path)
    except UnknownProfileError as e:
        raise UnknownProfileError(e.name, _shipped_of(kind)) from None
    if not isinstance(profile, kind):
        where = _locate(name_or_path)
        raise ProfileError(where, "kind", f"{profile.kind!r}, but a {kind.__name__} is needed")
    return profile


def _shipped_of(kind: type[P]) -> list[str]:
    """The shipped profiles of one kind (read only to explain an unknown name)."""
    return [name for name in known_profiles() if isinstance(load_profile(name), kind)]


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        return Path(name_or_path)
    shipped = resources.files("device_profiles") / "profiles" / f"{text}.toml"
    if not shipped.is_file():
        raise UnknownProfileError(text, known_profiles())
    return Path(str(shipped))


def _validate(path: Path, data: dict[str, Any]) -> Profile:
    data.setdefault("name", path.stem)
    try:
        profile: Profile = TypeAdapter(Profile).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        if loc and loc[0] == data.get("kind"):
            loc = loc[1:]  # the union's tag, not a field of the file
        field = ".".join(str(part) for part in loc) or "(root)"
        reason = first["msg"]
        more = exc.error_count() - 1
        raise ProfileError(path, field, reason + (f" (+{more} more)" if more else "")) from None
    if profile.name != path.stem:
        raise ProfileError(path, "name", f"{profile.name!r} differs from the file name")
    return profile
