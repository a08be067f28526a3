"""Load a TOML config file into a pydantic-settings class, with env overrides.

Precedence: environment (PREFIX_FIELD, nested with '__') > TOML file > defaults.
A bad file fails with the file name, the field path and the reason.
"""

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

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


def describe(error: ValidationError, where: str, env: Mapping[str, str] | None = None) -> str:
    """One line per error: the field path and the reason; with `env` (field path -> the variable
    that set it), an error in a value that came from the environment names that variable."""
    env = env or {}
    lines = []
    from_env = 0
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "(top level)"
        variable = _blamed_variable(item["loc"], env)
        if variable is not None:
            from_env += 1
            path = f"{path} (environment variable {variable})"
        lines.append(f"  {path}: {item['msg']}")
    if from_env == error.error_count():
        where = "environment variables"
    elif from_env:
        where = f"{where} and environment variables"
    return "\n".join([f"{where}: {error.error_count()} error(s)", *lines])


def env_variables(cls: type[BaseSettings]) -> dict[str, str]:
    """Field path ("mqtt.port") -> the set environment variable that overrides it, for a settings
    class's env_prefix and nested delimiter (names are matched case-insensitively, as
    pydantic-settings does by default)."""
    prefix = cls.model_config.get("env_prefix", "").upper()
    delimiter = cls.model_config.get("env_nested_delimiter") or None
    found = {}
    for name in os.environ:
        if prefix and name.upper().startswith(prefix) and len(name) > len(prefix):
            field = name[len(prefix) :].lower()
            found[".".join(field.split(delimiter)) if delimiter else field] = name
    return found


def _blamed_variable(loc: tuple[int | str, ...], env: Mapping[str, str]) -> str | None:
    """The variable that set this field or a section (or list) it is in, if any."""
    parts = [str(p).lower() for p in loc]
    for end in range(len(parts), 0, -1):
        variable = env.get(".".join(parts[:end]))
        if variable is not None:
            return variable
    return None


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
    _no_unknown_variables(cls)
    try:
        return cls(**data)
    except ValidationError as e:
        where = str(path) if path else cls.__name__
        raise ConfigError(describe(e, where, env_variables(cls))) from None
    except SettingsError as e:  # a list or section given as an environment variable, not JSON
        raise ConfigError(f"environment variables: {_json_hint(cls, str(e))}") from None


def _no_unknown_variables(cls: type[BaseSettings]) -> None:
    """pydantic-settings ignores a variable with our prefix that names no field: a typo
    (STOCKWIRE_EDGE_MQTT_PASSWORD for ..._MQTT__PASSWORD) would go unnoticed."""
    fields = set(cls.model_fields)
    unknown = sorted(
        name for path, name in env_variables(cls).items() if path.split(".")[0] not in fields
    )
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(
            f"environment variable {unknown[0]}: names no setting (settings: {known};"
            " nested ones joined with __)"
        )


def _json_hint(cls: type[BaseSettings], error: str) -> str:
    field = error.split('"')[1] if error.count('"') >= 2 else ""
    variable = env_variables(cls).get(field.lower())
    if variable is None:
        return error
    return (
        f"{variable}: not valid JSON (a list or a section is given as JSON, e.g. [...] or {{...}})"
    )
