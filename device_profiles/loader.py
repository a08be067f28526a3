"""Load device profiles from TOML: shipped ones by name, others by path."""

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from device_profiles.errors import ProfileError
from device_profiles.schema import Profile


def known_profiles() -> list[str]:
    """Names of the profiles shipped in device_profiles/profiles/."""
    shipped = resources.files("device_profiles") / "profiles"
    return sorted(
        p.name.removesuffix(".toml") for p in shipped.iterdir() if p.name.endswith(".toml")
    )


P = TypeVar("P", bound=BaseModel)


@overload
def load_profile(name_or_path: str | Path) -> Profile: ...
@overload
def load_profile(name_or_path: str | Path, expected: type[P]) -> P: ...


def load_profile(name_or_path: str | Path, expected: type[BaseModel] | None = None) -> BaseModel:
    """A shipped profile by name (file stem), or any profile file by path; with `expected`,
    a profile of another kind is a ProfileError."""
    path = _locate(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "(toml)", str(exc)) from None
    profile = _validate(path, data)
    if expected is not None and not isinstance(profile, expected):
        raise ProfileError(path, "kind", f"{profile.kind!r} is not a {expected.__name__}")
    return profile


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        return Path(name_or_path)
    shipped = resources.files("device_profiles") / "profiles" / f"{text}.toml"
    if not shipped.is_file():
        known = ", ".join(known_profiles())
        raise ProfileError(f"{text}.toml", "(name)", f"no profile {text!r}; known: {known}")
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
