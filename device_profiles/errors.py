"""The one error a bad or unknown device profile raises."""

from pathlib import Path

from stockwire.errors import ConfigError


class ProfileError(ConfigError):
    """A profile that cannot be used: names the file, the field path and the reason."""

    def __init__(self, file: Path | str, field: str, reason: str) -> None:
        self.file = str(file)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.file}: {field}: {reason}")
