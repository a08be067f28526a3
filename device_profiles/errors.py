"""The one error a bad or unknown device profile raises."""

from collections.abc import Sequence
from pathlib import Path

from stockwire.errors import ConfigError


class ProfileError(ConfigError):
    """A profile that cannot be used: names the file, the field path and the reason."""

    def __init__(self, file: Path | str, field: str, reason: str) -> None:
        self.file = str(file)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.file}: {field}: {reason}")


class UnknownProfileError(ProfileError):
    """A profile name that is no shipped profile (and not a path): there is no file to blame."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        self.file, self.field = "", "(name)"
        self.reason = f"no profile named {name!r}; known: {', '.join(known) or 'none'}"
        ConfigError.__init__(self, self.reason)
