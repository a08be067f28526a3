class StockwireError(Exception):
    """Root of the errors this package raises on purpose."""


class ConfigError(StockwireError):
    """A config file or environment value is wrong; the message names the file and field."""
