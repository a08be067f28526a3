"""Load a TOML config file into a pydantic-settings class, with env overrides.

Precedence: environment (PREFIX_FIELD, nested with '__') > TOML file > defaults.
A bad file fails with the file name, the field path and the reason.
"""

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from stockwire.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def describe(error: ValidationError, where: str) -> str:
    lines = [f"{where}: {error.error_count()} error(s)"]
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {path}: {item['msg']}")
    return "\n".join(lines)


class _InitFirst:
    """Mixin hook: env beats init kwargs (the TOML), unlike pydantic-settings' default."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings


EnvFirst = _InitFirst


def load_settings(cls: type[S], path: Path | None, **overrides: Any) -> S:
    data = read_toml(path) if path is not None else {}
    data.update(overrides)
    try:
        return cls(**data)
    except ValidationError as e:
        raise ConfigError(describe(e, str(path) if path else cls.__name__)) from None
